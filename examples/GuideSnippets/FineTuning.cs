using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Training;
using Microsoft.ML;

namespace Cnn.Examples.GuideSnippets;

/// <summary>The snippets of docs/guides/fine-tuning.md.</summary>
internal static class FineTuning
{
    /// <summary>Fine-tunes a network on a folder per class with the usual recipe options.</summary>
    public static ITransformer Recipes(string folder, string? weightsFile)
    {
        #region pipeline
        var ml = new MLContext(seed: 1);
        ml.Log += (_, e) => { if (e.Source == "CnnTrainer") Console.WriteLine(e.Message); };   // one line per epoch
        var dataset = ImageFolderDataset.Scan(folder);                  // folder/<class>/<image>, classes sorted by name
        IDataView data = ImageDataViews.ToDataView(ml, dataset);        // columns Image (the path) and Label (the class name)
        var pipeline = ImageDataViews.MapLabelsToKeys(ml, dataset.ClassNames)   // keys in the folder's class order
            .Append(CnnTrainer.ResNet18(new CnnTrainerOptions
            {
                Model = new() { WeightsPath = weightsFile },            // null: random initialisation
                Freeze = FreezeMode.UpToStage, FreezeUpToStage = 2,     // stem, layer1 and layer2 keep their weights
                Epochs = 5, BatchSize = 32, LearningRate = 1e-3, WarmupEpochs = 0.5,
                ValidationFraction = 0.1, EarlyStoppingPatience = 2,    // stratified 10% split; the best epoch is kept
            }, ml))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        ITransformer model = pipeline.Fit(data);
        #endregion
        return model;
    }

    /// <summary>The timm/fastai recipe options.</summary>
    public static CnnTrainerOptions ModernRecipe() =>
        #region recipe
        new CnnTrainerOptions
        {
            LabelSmoothing = 0.1,                                   // --smoothing 0.1
            MixupAlpha = 0.2, CutMixAlpha = 1.0,                    // --mixup 0.2 --cutmix 1.0
            ModelEmaDecay = 0.999,                                  // --model-ema --model-ema-decay 0.999
            ClipGradNorm = 1.0,                                     // --clip-grad 1.0
            AccumulationSteps = 2,                                  // --accum-steps 2
            FreezeEpochs = 1, DiscriminativeLearningRateRatio = 100, // fastai's fine_tune: --freeze-epochs 1 --lr-mult 100
            Schedule = LearningRateScheduleKind.OneCycle,           // --sched onecycle
        };
        #endregion

    /// <summary>Checkpoints every epoch and resumes an interrupted run.</summary>
    public static CnnTrainerOptions Checkpoints() =>
        #region checkpoints
        new CnnTrainerOptions
        {
            Epochs = 20,
            CheckpointDirectory = "checkpoints",    // --checkpoint-dir: the whole training state after every epoch
            CheckpointEverySteps = 500,             // --checkpoint-every: and every 500 optimizer steps
            ResumeFrom = "checkpoints",             // --resume: continue from the newest whole checkpoint, if there is one
        };
        #endregion

    /// <summary>Trains only the head on cached outputs of a frozen backbone.</summary>
    public static CnnTrainerOptions BottleneckCache(string weightsFile) =>
        #region bottleneck
        new CnnTrainerOptions
        {
            Model = new() { WeightsPath = weightsFile },
            Freeze = FreezeMode.Backbone,           // --freeze backbone
            Augment = false,                        // the cache needs the same input every epoch
            CacheDirectory = "bottlenecks",         // --cache-dir: keep the cache between runs (keyed by weights and image bytes)
            Epochs = 10,
        };
        #endregion

    /// <summary>Runs the learning-rate range test.</summary>
    public static double FindRate(MLContext ml, IDataView data)
    {
        #region lrfind
        var estimator = CnnTrainer.ResNet18(new CnnTrainerOptions { BatchSize = 32 }, ml);
        var result = estimator.FindLearningRate(ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data));
        Console.WriteLine($"suggested learning rate: {result.Suggested:G3}");
        #endregion
        return result.Suggested ?? double.NaN;
    }

    /// <summary>Saves a fitted pipeline and predicts one image with the loaded copy.</summary>
    public static string SaveAndPredict(MLContext ml, ITransformer model, IDataView data, string image)
    {
        #region save
        CnnPipelineFile.Save(ml, model, data.Schema, "model.zip");      // ML.NET stages + network in one file, written atomically
        ITransformer loaded = CnnPipelineFile.Load(ml, "model.zip", out DataViewSchema inputSchema);
        var engine = ml.Model.CreatePredictionEngine<ImagePathRow, ClassPrediction>(loaded);   // one engine per thread
        ClassPrediction prediction = engine.Predict(new ImagePathRow { Image = image });
        Console.WriteLine($"{image}: {prediction.PredictedClass}");
        #endregion
        return prediction.PredictedClass;
    }
}

/// <summary>The prediction columns of a classifier pipeline ending in MapKeyToValue("PredictedClass", "PredictedLabel").</summary>
internal sealed class ClassPrediction
{
    /// <summary>The predicted class name.</summary>
    public string PredictedClass { get; set; } = "";

    /// <summary>The probability of each class, in key order.</summary>
    public float[] Score { get; set; } = [];
}
