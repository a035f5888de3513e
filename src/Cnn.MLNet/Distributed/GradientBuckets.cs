using System.Diagnostics;
using System.Runtime.InteropServices;
using Cnn.Backbones.Native;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.MLNet.Distributed;

/// <summary>
/// Averages the gradients of a fixed list of parameters over every rank as DistributedDataParallel does: the gradients are copied
/// into a few flat float32 buckets of about <see cref="BucketBytes"/> (DDP's 25 MB), each bucket is summed with one allreduce and
/// divided by the rank count, and the result is copied back. A parameter without a gradient counts as zeros (and stays without).
/// </summary>
internal sealed class GradientBuckets : IDisposable
{
    /// <summary>Bytes per bucket (a parameter larger than this gets a bucket of its own).</summary>
    public const long BucketBytes = 25L << 20;

    private readonly ICommunicator _communicator;
    private readonly List<(Tensor Buffer, List<(Parameter Parameter, long Offset)> Members)> _buckets = [];

    public GradientBuckets(ICommunicator communicator, IReadOnlyList<Parameter> parameters)
    {
        _communicator = communicator;
        Parameters = parameters;
        var members = new List<(Parameter, long)>();
        long length = 0;
        foreach (var parameter in parameters)
        {
            long n = parameter.numel();
            if (members.Count > 0 && (length + n) * sizeof(float) > BucketBytes) Close();
            members.Add((parameter, length));
            length += n;
        }
        if (members.Count > 0) Close();

        void Close()
        {
            _buckets.Add((zeros(length, ScalarType.Float32).DetachFromDisposeScope(), members)); // lives across steps, not in a step's scope
            members = [];
            length = 0;
        }
    }

    /// <summary>The parameters whose gradients are averaged, in the order every rank uses.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Gradient bytes each rank sends into the allreduce per step.</summary>
    public long Bytes => _buckets.Sum(b => b.Buffer.numel()) * sizeof(float);

    /// <summary>Allreduce calls per step.</summary>
    public int Count => _buckets.Count;

    /// <summary>Replaces every gradient with its mean over the ranks; returns the time spent inside MPI.</summary>
    public TimeSpan Average()
    {
        var inMpi = TimeSpan.Zero;
        foreach (var (buffer, members) in _buckets)
        {
            using var scope = NewDisposeScope();
            foreach (var (parameter, offset) in members)
            {
                var slice = buffer.narrow(0, offset, parameter.numel());
                if (parameter.grad is { } grad) slice.copy_(grad.reshape(-1));
                else slice.zero_();
            }
            var values = MemoryMarshal.Cast<byte, float>(buffer.bytes);
            long start = Stopwatch.GetTimestamp();
            _communicator.AllreduceSum(values);
            inMpi += Stopwatch.GetElapsedTime(start);
            buffer.DivideInPlace(_communicator.Size);
            foreach (var (parameter, offset) in members)
                if (parameter.grad is { } grad) grad.copy_(buffer.narrow(0, offset, parameter.numel()).view_as(grad));
        }
        return inMpi;
    }

    public void Dispose()
    {
        foreach (var (buffer, _) in _buckets) buffer.Dispose();
        _buckets.Clear();
    }
}
