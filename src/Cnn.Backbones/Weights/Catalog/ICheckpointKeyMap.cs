namespace Cnn.Backbones.Weights.Catalog;

/// <summary>
/// Converts a state dict written in another library's layout (timm's) into this library's layout for one architecture, and back.
/// Declared by the family beside its architectures (<see cref="Models.ModelDefinition.TimmKeyMap"/>).
/// </summary>
public interface ICheckpointKeyMap
{
    /// <summary>Whether <paramref name="keys"/> are in the foreign layout this map reads (decided from the keys alone).</summary>
    /// <param name="keys">The state dict's keys.</param>
    bool IsForeignLayout(IReadOnlyCollection<string> keys);

    /// <summary>
    /// A new state dict in this library's layout (renamed, reshaped, split or merged tensors). A key it cannot place is an
    /// error naming that key, never silently dropped; the input is not modified.
    /// </summary>
    /// <param name="foreign">The state dict in the foreign layout.</param>
    StateDict ToOurs(StateDict foreign);

    /// <summary>A new state dict in the foreign layout, the inverse of <see cref="ToOurs"/>; the input is not modified.</summary>
    /// <param name="ours">The state dict in this library's layout.</param>
    StateDict ToForeign(StateDict ours);
}
