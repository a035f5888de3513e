using Cnn.Backbones.Models;
using Microsoft.ML.Runtime;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.MLNet.Distributed;

/// <summary>
/// What the training loop does differently as one rank of an <c>mpirun</c> launch (PyTorch's DistributedDataParallel): every rank
/// starts from rank 0's weights, trains on its shard of each epoch (<see cref="DistributedShard"/>), and has its gradients averaged
/// with the other ranks' before every optimizer step; rank 0 alone logs, validates, checkpoints and decides early stopping, and the
/// others follow its decision. A rank that fails ends the whole launch (MPI_Abort) after printing why, so no rank waits forever.
/// </summary>
internal sealed class DataParallelTraining : IDisposable
{
    private readonly ICommunicator _communicator;
    private GradientBuckets? _buckets;
    private TimeSpan _inMpi;
    private long _steps;
    private int _synchronisedNormLayers;

    public DataParallelTraining(ICommunicator communicator) => _communicator = communicator;

    /// <summary>The run of this process: null unless it was launched by mpirun as one of two or more ranks.</summary>
    public static DataParallelTraining? FromEnvironment() => MpiCommunicator.World is { } world ? new DataParallelTraining(world) : null;

    /// <summary>This process's rank.</summary>
    public int Rank => _communicator.Rank;

    /// <summary>The number of ranks.</summary>
    public int Size => _communicator.Size;

    /// <summary>True on rank 0, which logs, validates, checkpoints and saves.</summary>
    public bool IsRoot => _communicator.Rank == 0;

    /// <summary>Copies rank 0's parameters and buffers (weights, BatchNorm statistics) into every other rank's model.</summary>
    public void Synchronise(Backbone model)
    {
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            foreach (var (_, value) in model.state_dict())
            {
                var host = value.detach().to(CPU).contiguous().clone();
                _communicator.Broadcast(host.bytes);
                value.copy_(host);
            }
        }
    }

    /// <summary>Synchronises every BatchNorm of <paramref name="model"/> across the ranks until disposed (<see cref="SynchronizedBatchNorm"/>).</summary>
    public SynchronizedBatchNorm SynchroniseBatchNorm(Backbone model)
    {
        var norms = new SynchronizedBatchNorm(model, _communicator);
        _synchronisedNormLayers = norms.Layers;
        return norms;
    }

    /// <summary>Replaces the gradients of <paramref name="trainable"/> with their mean over the ranks (one allreduce per bucket).</summary>
    public void AverageGradients(List<Parameter> trainable)
    {
        if (_buckets is null || !ReferenceEquals(_buckets.Parameters, trainable))
        {
            _buckets?.Dispose();
            _buckets = new GradientBuckets(_communicator, trainable);
        }
        _inMpi += _buckets.Average();
        _steps++;
    }

    /// <summary>Rank 0's <paramref name="value"/> on every rank (e.g. whether to stop early, which only rank 0 can tell).</summary>
    public bool FollowRoot(bool value)
    {
        Span<byte> flag = [value ? (byte)1 : (byte)0];
        _communicator.Broadcast(flag);
        return flag[0] != 0;
    }

    /// <summary>Waits for every rank (e.g. while rank 0 writes a checkpoint).</summary>
    public void Barrier() => _communicator.Barrier();

    /// <summary>Where the gradient traffic stands: steps so far, bytes per step, allreduce calls per step and the time inside them.</summary>
    public DataParallelReport Report() => new(Size, _steps, _buckets?.Bytes ?? 0, _buckets?.Count ?? 0, _inMpi, _synchronisedNormLayers);

    /// <summary>Prints <paramref name="failure"/> with this rank's number and ends every rank of the launch (exit code 1).</summary>
    public void Abort(Exception failure)
    {
        Console.Error.WriteLine($"cnn: rank {Rank} of {Size} failed: {failure.Message} Stopping every rank.");
        if (Environment.GetEnvironmentVariable("CNN_DEBUG") == "1") Console.Error.WriteLine(failure);
        Console.Error.Flush();
        _communicator.Abort(1);
    }

    /// <summary>At the end of training: logs the gradient traffic on <paramref name="channel"/> and gives it to <see cref="CnnFitOptions.DataParallelCompleted"/> (rank 0 only).</summary>
    public void Complete(IChannel? channel, CnnFitOptions options)
    {
        if (!IsRoot) return;
        var report = Report();
        channel?.Info(MessageSensitivity.None, report.ToString());
        options.DataParallelCompleted?.Invoke(report);
    }

    public void Dispose()
    {
        _buckets?.Dispose();
        _buckets = null;
    }
}
