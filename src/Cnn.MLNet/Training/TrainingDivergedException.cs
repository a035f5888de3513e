namespace Cnn.MLNet.Training;

/// <summary>The training loss became NaN or infinite; the message names the epoch and step and suggests a fix.</summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException(int epoch, int step, double loss, double learningRate)
        : base($"Training diverged: the loss is {loss} at epoch {epoch}, step {step} (learning rate {learningRate:G4}). " +
               $"Lower the learning rate (e.g. {learningRate / 10:G4}), add warm-up epochs, or check the inputs for invalid values.")
    {
        Epoch = epoch;
        Step = step;
    }

    /// <summary>1-based epoch in which the loss diverged.</summary>
    public int Epoch { get; }

    /// <summary>1-based step within the epoch.</summary>
    public int Step { get; }
}
