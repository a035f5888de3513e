namespace Cnn.Examples.Serving;

/// <summary>The server's settings, from the command line (<c>--Model plain.zip</c>), the environment or appsettings.json.</summary>
/// <param name="ModelPath">The plain ML.NET model ('cnn export --format mlnet').</param>
/// <param name="MaxImageBytes">Largest request body accepted; larger bodies get 413.</param>
/// <param name="TopK">Classes returned when the request does not say (?top=K).</param>
public sealed record ServingSettings(string ModelPath, long MaxImageBytes, int TopK)
{
    /// <summary>Reads and checks the settings.</summary>
    /// <exception cref="InvalidOperationException">A setting is missing or out of range (the message says which and how to fix it).</exception>
    public static ServingSettings From(IConfiguration configuration)
    {
        string model = configuration["Model"] ?? throw new InvalidOperationException(
            "No model: start with --Model <plain.zip> (a model written by 'cnn export --model-file model.zip --format mlnet').");
        if (!File.Exists(model)) throw new InvalidOperationException($"Model file '{model}' does not exist.");
        long maxBytes = configuration.GetValue("MaxImageBytes", 10L * 1024 * 1024);
        int top = configuration.GetValue("TopK", 5);
        if (maxBytes < 1) throw new InvalidOperationException($"MaxImageBytes must be at least 1; got {maxBytes}.");
        if (top < 1) throw new InvalidOperationException($"TopK must be at least 1; got {top}.");
        return new ServingSettings(model, maxBytes, top);
    }
}

/// <summary>The answer of <c>GET /health</c>.</summary>
/// <param name="Status">"ok" once the model is loaded.</param>
/// <param name="Classes">The model's number of classes.</param>
public sealed record Health(string Status, int Classes);
