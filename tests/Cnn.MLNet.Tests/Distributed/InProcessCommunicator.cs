using Cnn.MLNet.Distributed;

namespace Cnn.MLNet.Tests.Distributed;

/// <summary>
/// N ranks as N threads of one process, for testing collectives without mpirun: each rank's <see cref="ICommunicator"/> is
/// <see cref="Rank"/>(r); a collective waits until every rank has called it, as MPI's do.
/// </summary>
internal sealed class InProcessCommunicator : IDisposable
{
    private readonly Barrier _barrier;
    private readonly double[][] _slots;

    public InProcessCommunicator(int size)
    {
        _barrier = new Barrier(size);
        _slots = new double[size][];
    }

    /// <summary>The communicator of rank <paramref name="rank"/>.</summary>
    public ICommunicator Rank(int rank) => new Member(this, rank);

    /// <summary>Runs <paramref name="work"/>(r) on one thread per rank and waits for all; rethrows the first failure.</summary>
    public void Run(Action<int> work)
    {
        var failures = new Exception?[_slots.Length];
        var threads = Enumerable.Range(0, _slots.Length).Select(r => new Thread(() =>
        {
            try { work(r); }
            catch (Exception e) { failures[r] = e; _barrier.RemoveParticipant(); }
        }, maxStackSize: 16 << 20)).ToList();
        threads.ForEach(t => t.Start());
        if (!threads.All(t => t.Join(TimeSpan.FromMinutes(2)))) Assert.Fail("a rank did not finish within 2 minutes (a collective left waiting?)");
        if (failures.FirstOrDefault(f => f is not null) is { } failure) throw new AggregateException(failure);
    }

    public void Dispose() => _barrier.Dispose();

    private void Sum(int rank, Span<double> values)
    {
        _slots[rank] = values.ToArray();
        _barrier.SignalAndWait();
        values.Clear();
        foreach (var slot in _slots)
            for (int i = 0; i < values.Length; i++) values[i] += slot[i];
        _barrier.SignalAndWait();
    }

    private sealed class Member(InProcessCommunicator group, int rank) : ICommunicator
    {
        public int Rank => rank;

        public int Size => group._slots.Length;

        public void AllreduceSum(Span<double> values) => group.Sum(rank, values);

        public void AllreduceSum(Span<float> values)
        {
            var wide = new double[values.Length];
            for (int i = 0; i < values.Length; i++) wide[i] = values[i];
            group.Sum(rank, wide);
            for (int i = 0; i < values.Length; i++) values[i] = (float)wide[i];
        }

        public void Broadcast(Span<byte> values) => throw new NotSupportedException("not needed by these tests");

        public void Barrier() => group._barrier.SignalAndWait();

        public void Abort(int code) => throw new InvalidOperationException($"rank {rank} aborted with {code}");
    }
}
