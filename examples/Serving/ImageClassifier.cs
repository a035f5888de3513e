using Microsoft.Extensions.ObjectPool;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Cnn.Examples.Serving;

/// <summary>
/// The model, loaded once, and a pool of prediction engines: a <see cref="PredictionEngine{TSrc, TDst}"/> is not thread-safe,
/// so each request takes one from the pool and gives it back (the pool creates more under load and keeps a few).
/// </summary>
public sealed class ImageClassifier
{
    private readonly ObjectPool<PredictionEngine<ModelInput, ModelOutput>> _engines;

    /// <summary>Loads the model at <paramref name="modelPath"/>.</summary>
    public ImageClassifier(string modelPath)
    {
        var mlContext = new MLContext();
        var model = mlContext.Model.Load(modelPath, out _);
        _engines = new DefaultObjectPool<PredictionEngine<ModelInput, ModelOutput>>(new EnginePolicy(mlContext, model), Environment.ProcessorCount * 2);
        var engine = _engines.Get();
        try
        {
            VBuffer<ReadOnlyMemory<char>> names = default;
            var score = engine.OutputSchema["Score"];
            if (score.HasSlotNames()) score.GetSlotNames(ref names);
            int count = (score.Type as VectorDataViewType)?.Size ?? throw new InvalidDataException("The model's Score column is not a vector of probabilities.");
            ClassNames = names.Length == count ? names.DenseValues().Select(n => n.ToString()).ToArray()
                : Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        }
        finally
        {
            _engines.Return(engine);
        }
    }

    /// <summary>Class names in score order (the score column's slot names).</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The <paramref name="top"/> most probable classes of <paramref name="image"/>, most probable first.</summary>
    public IReadOnlyList<ClassProbability> Predict(MLImage image, int top)
    {
        var engine = _engines.Get();
        float[] scores;
        try
        {
            scores = engine.Predict(new ModelInput { Image = image }).Score;
        }
        finally
        {
            _engines.Return(engine);
        }
        return scores.Select((p, i) => new ClassProbability(ClassNames[i], p))
            .OrderByDescending(c => c.Probability).Take(top).ToArray();
    }

    private sealed class EnginePolicy(MLContext mlContext, ITransformer model) : IPooledObjectPolicy<PredictionEngine<ModelInput, ModelOutput>>
    {
        private readonly Lock _create = new();

        public PredictionEngine<ModelInput, ModelOutput> Create()
        {
            lock (_create) return mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);
        }

        public bool Return(PredictionEngine<ModelInput, ModelOutput> engine) => true;
    }
}

/// <summary>One row in: the image (and an empty label, which the model's label mapping needs as a column).</summary>
public sealed class ModelInput
{
    /// <summary>The decoded image. ML.NET wants a size in <see cref="ImageTypeAttribute"/>; the model resizes images of any size.</summary>
    [ImageType(224, 224)]
    public MLImage Image { get; set; } = null!;

    /// <summary>Unknown at serving time.</summary>
    public string Label { get; set; } = "";
}

/// <summary>What the server reads from a prediction: the class probabilities.</summary>
public sealed class ModelOutput
{
    /// <summary>Probabilities in class order.</summary>
    public float[] Score { get; set; } = [];
}

/// <summary>A class and its probability.</summary>
/// <param name="Label">The class name.</param>
/// <param name="Probability">Its probability.</param>
public sealed record ClassProbability(string Label, float Probability);

/// <summary>The answer of <c>POST /predict</c>.</summary>
/// <param name="Predictions">The most probable classes, most probable first.</param>
public sealed record PredictResponse(IReadOnlyList<ClassProbability> Predictions);
