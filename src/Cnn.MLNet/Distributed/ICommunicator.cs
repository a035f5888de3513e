namespace Cnn.MLNet.Distributed;

/// <summary>The collective operations data-parallel training uses, over every rank of a run.</summary>
internal interface ICommunicator
{
    /// <summary>This process's rank, 0 … <see cref="Size"/> − 1.</summary>
    int Rank { get; }

    /// <summary>The number of ranks.</summary>
    int Size { get; }

    /// <summary>Replaces <paramref name="values"/> on every rank with their element-wise sum over the ranks.</summary>
    void AllreduceSum(Span<float> values);

    /// <inheritdoc cref="AllreduceSum(Span{float})"/>
    void AllreduceSum(Span<double> values);

    /// <summary>Replaces <paramref name="values"/> on every rank with rank 0's.</summary>
    void Broadcast(Span<byte> values);

    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();

    /// <summary>Ends every rank's process with <paramref name="code"/>; does not return.</summary>
    void Abort(int code);
}
