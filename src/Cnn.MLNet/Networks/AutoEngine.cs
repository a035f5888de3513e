using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Cnn.MLNet.Networks;

/// <summary>
/// How <see cref="CnnInferenceEngine.Auto"/> chooses between TorchSharp and ONNX Runtime: by measuring both on a network's
/// first bulk pass (<see cref="CnnNetwork"/> runs the calibration on that real batch), keeping the faster, and caching the
/// decision for the process under what determines it (<see cref="Key"/>), so that transformers built or loaded again in one
/// process choose alike without measuring again.
/// </summary>
internal static class AutoEngine
{
    /// <summary>
    /// The smallest batch Auto measures on; smaller passes run in TorchSharp. The calibration costs the ONNX export with its
    /// verification (about a second for resnet18), a pass of TorchSharp and two of ONNX Runtime, one of which is the batch's
    /// own result, which a bulk pass of hundreds of images earns
    /// back many times over (ONNX Runtime ran resnet18 at 224 px 1.5× faster than TorchSharp's float32 path on a 2-core
    /// Zen 4) but a single image (a prediction engine, <c>cnn predict photo.jpg</c>) or a test's handful never does. Below 8
    /// images a pass is also dominated by per-call overheads (input and output copies, dispatch) rather than the arithmetic,
    /// so its timing would not predict the bulk passes that follow; from 8 up a pass of a 224 px ResNet takes over 100 ms on
    /// two cores, long enough to time reliably.
    /// </summary>
    public const int MinimumBatch = 8;

    /// <summary>What a decision depends on: the network's architecture and input shape, the batch size, the threads and the output.</summary>
    public readonly record struct Key(string Architecture, int Channels, int Height, int Width, int Batch, int Threads, bool PreLogits)
    {
        public override string ToString() => $"{Architecture}, {Channels}×{Height}×{Width}, batch {Batch}, {Threads} thread{(Threads == 1 ? "" : "s")}{(PreLogits ? ", pooled features" : "")}";
    }

    /// <summary>A calibration's outcome: the engine kept, both rates in images per second, and why ONNX Runtime could not run, if it could not.</summary>
    public sealed record Decision(CnnInferenceEngine Engine, double TorchSharpRate, double OnnxRuntimeRate, string? OnnxRuntimeFailure)
    {
        /// <summary>The log line: <c>auto: ONNX Runtime, 61.0 img/s against TorchSharp's 37.2 (resnet18, 3×224×224, batch 32, 2 threads; measured on this batch)</c>.</summary>
        public string Describe(Key key, bool measuredHere)
        {
            string when = measuredHere ? "measured on this batch" : "as measured earlier in this process";
            if (OnnxRuntimeFailure is not null)
                return $"auto: TorchSharp, {Rate(TorchSharpRate)} img/s; ONNX Runtime could not run this network ({OnnxRuntimeFailure}) ({key}; {when})";
            return Engine == CnnInferenceEngine.OnnxRuntime
                ? $"auto: ONNX Runtime, {Rate(OnnxRuntimeRate)} img/s against TorchSharp's {Rate(TorchSharpRate)} ({key}; {when})"
                : $"auto: TorchSharp, {Rate(TorchSharpRate)} img/s against ONNX Runtime's {Rate(OnnxRuntimeRate)} ({key}; {when})";
        }

        private static string Rate(double rate) => rate.ToString("0.0", CultureInfo.InvariantCulture);
    }

    /// <summary>Measures one engine: given the engine, one pass over the calibration batch and its image count, the rate in images per second.</summary>
    public delegate double Measure(CnnInferenceEngine engine, Action pass, int images);

    private sealed record Scope(Measure Measure, ConcurrentDictionary<Key, Lazy<Decision>> Decisions);

    private static readonly Scope Process = new(Timed, new());
    private static readonly AsyncLocal<Scope?> TestScope = new();

    private static Scope Current => TestScope.Value ?? Process;

    /// <summary>The measurement in force (<see cref="Timed"/>, or a test's).</summary>
    public static Measure Measurement => Current.Measure;

    /// <summary>
    /// Test seam: in this asynchronous flow, measures with <paramref name="measure"/> and keeps decisions in a cache of its own
    /// (empty at first) until the returned scope is disposed.
    /// </summary>
    public static IDisposable UseForTests(Measure measure)
    {
        var previous = TestScope.Value;
        TestScope.Value = new Scope(measure, new());
        return new Restore(() => TestScope.Value = previous);
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }

    /// <summary>
    /// Why Auto runs <paramref name="network"/> in TorchSharp for a pass of <paramref name="images"/> images without measuring,
    /// or null when it measures (the CPU, float32, at least <see cref="MinimumBatch"/> images).
    /// </summary>
    public static string? WhyTorchSharp(CnnNetwork network, int images)
    {
        if (network.Device.type != TorchSharp.DeviceType.CPU) return $"on {network.Device}: ONNX Runtime runs on the CPU here";
        if (network.Model.Compute.ReducedType is { } reduced) return $"computing in {reduced.ToString().ToLowerInvariant()}: ONNX Runtime computes in float32";
        if (images < MinimumBatch) return $"passes of {images} image{(images == 1 ? "" : "s")}, under the {MinimumBatch} Auto measures on";
        return null;
    }

    /// <summary>The key of a pass of <paramref name="images"/> images through <paramref name="network"/>.</summary>
    public static Key KeyOf(CnnNetwork network, int images, bool preLogits) =>
        new(network.Architecture, network.Preprocess.Channels, network.Preprocess.Height, network.Preprocess.Width, images, TorchSharp.torch.get_num_threads(), preLogits);

    /// <summary>
    /// The decision for <paramref name="key"/>: cached, or made now by <paramref name="calibrate"/> (once per key, however
    /// many networks ask at the same time). A calibration that throws is not cached.
    /// </summary>
    public static (Decision Decision, bool MeasuredHere) Decide(Key key, Func<Decision> calibrate)
    {
        var decisions = Current.Decisions;
        bool measured = false;
        var lazy = decisions.GetOrAdd(key, _ => new Lazy<Decision>(() =>
        {
            measured = true;
            return calibrate();
        }, LazyThreadSafetyMode.ExecutionAndPublication));
        try
        {
            return (lazy.Value, measured);
        }
        catch
        {
            decisions.TryRemove(new KeyValuePair<Key, Lazy<Decision>>(key, lazy));
            throw;
        }
    }

    /// <summary>
    /// One timed pass, after a warm-up pass for ONNX Runtime only. ONNX Runtime's first run of a session sizes its memory arena
    /// and was 10–15% slower than the runs after it (resnet18 and resnet50 at 224 px, batch 32, on a 2-core Zen 4); TorchSharp's
    /// first pass was within 3% of the next ones, so a second pass of it would only add seconds to the first batch (3 s for
    /// resnet50). The last pass's output is the batch's result, not thrown away.
    /// </summary>
    private static double Timed(CnnInferenceEngine engine, Action pass, int images)
    {
        if (engine == CnnInferenceEngine.OnnxRuntime) pass();
        var clock = Stopwatch.StartNew();
        pass();
        return images / clock.Elapsed.TotalSeconds;
    }
}
