using System.Buffers.Binary;
using System.Diagnostics;

namespace Cnn.Tests.Shared;

/// <summary>
/// A deterministic byte mutator for the bounded mutation tests: bit flips, random bytes, inserts, deletes, truncations,
/// duplicated ranges, splices with another seed, and length-like fields (1, 2, 4 or 8 bytes, either byte order) overwritten
/// with huge or boundary values, which is what a header that claims a 10 GB tensor or a 100000×100000 image looks like.
/// </summary>
internal sealed class ByteMutator(int seed)
{
    private static readonly ulong[] Interesting =
    {
        0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 100_000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
        10_000_000_000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF,
    };

    private readonly Random _random = new(seed);

    /// <summary>A mutant of one of <paramref name="seeds"/>: 1 to 4 mutations stacked.</summary>
    public byte[] Mutate(IReadOnlyList<byte[]> seeds)
    {
        var data = new List<byte>(seeds[_random.Next(seeds.Count)]);
        int rounds = 1 + _random.Next(4);
        for (int r = 0; r < rounds; r++) MutateOnce(data, seeds);
        return data.ToArray();
    }

    private void MutateOnce(List<byte> data, IReadOnlyList<byte[]> seeds)
    {
        int At() => data.Count == 0 ? 0 : _random.Next(data.Count);
        switch (_random.Next(8))
        {
            case 0 when data.Count > 0: // bit flip
            {
                int i = At();
                data[i] ^= (byte)(1 << _random.Next(8));
                break;
            }
            case 1 when data.Count > 0: // random byte
                data[At()] = (byte)_random.Next(256);
                break;
            case 2: // insert 1–16 random bytes
            {
                var bytes = new byte[1 + _random.Next(16)];
                _random.NextBytes(bytes);
                data.InsertRange(data.Count == 0 ? 0 : _random.Next(data.Count + 1), bytes);
                break;
            }
            case 3 when data.Count > 1: // delete a range
            {
                int i = At();
                data.RemoveRange(i, Math.Min(data.Count - i, 1 + _random.Next(32)));
                break;
            }
            case 4 when data.Count > 0: // truncate
            {
                int keep = _random.Next(data.Count);
                data.RemoveRange(keep, data.Count - keep);
                break;
            }
            case 5 when data.Count > 1: // duplicate a range somewhere else
            {
                int i = At(), length = Math.Min(data.Count - i, 1 + _random.Next(64));
                data.InsertRange(_random.Next(data.Count + 1), data.GetRange(i, length));
                break;
            }
            case 6: // splice: this seed's head, another seed's tail
            {
                var other = seeds[_random.Next(seeds.Count)];
                int cut = data.Count == 0 ? 0 : _random.Next(data.Count), from = other.Length == 0 ? 0 : _random.Next(other.Length);
                data.RemoveRange(cut, data.Count - cut);
                data.AddRange(other.AsSpan(from).ToArray());
                break;
            }
            default: // a length-like field overwritten with a huge or boundary value
                OverwriteField(data);
                break;
        }
    }

    private void OverwriteField(List<byte> data)
    {
        int width = 1 << _random.Next(4); // 1, 2, 4 or 8 bytes
        if (data.Count < width) return;
        ulong value = Interesting[_random.Next(Interesting.Length)];
        if (_random.Next(4) == 0) value += (ulong)_random.Next(-2, 3);
        Span<byte> bytes = stackalloc byte[8];
        if (_random.Next(2) == 0) BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        else BinaryPrimitives.WriteUInt64BigEndian(bytes, value << (8 * (8 - width)));
        int at = _random.Next(data.Count - width + 1);
        for (int i = 0; i < width; i++) data[at + i] = bytes[i];
    }
}

/// <summary>What a bounded mutation run did.</summary>
/// <param name="Cases">Mutants tried (the unmutated seeds not counted).</param>
/// <param name="Refused">Mutants refused with a documented exception.</param>
/// <param name="Elapsed">Wall time of the whole run.</param>
/// <param name="MaxManaged">The most managed bytes one case allocated.</param>
internal sealed record MutationSummary(int Cases, int Refused, TimeSpan Elapsed, long MaxManaged)
{
    public int Accepted => Cases - Refused;

    public override string ToString() =>
        $"{Cases} cases in {Elapsed.TotalSeconds:F1} s: {Refused} refused with the documented exception, {Accepted} read; at most {MaxManaged} managed bytes a case";
}

/// <summary>
/// Runs a parser over the seeds and then over seeded mutants of them, one case at a time on a worker thread, and fails the
/// test on the first case that throws anything but the documented exceptions, runs past the per-case timeout, or allocates
/// more than the input justifies (managed bytes on the parsing thread; native tensor bytes where the parser reports them).
/// A failing input is written to <c>$TMPDIR/cnn-mutation-failures/</c> and named in the message.
/// </summary>
internal sealed class MutationFuzz
{
    /// <summary>Names the run in messages and the failure file (e.g. <c>safetensors</c>).</summary>
    public required string Format { get; init; }

    /// <summary>Real files of the format; each must be read without an exception.</summary>
    public required IReadOnlyList<byte[]> Seeds { get; init; }

    /// <summary>Parses one input (the bytes of a whole file).</summary>
    public required Action<byte[]> Parse { get; init; }

    /// <summary>True for the exception types the parser documents.</summary>
    public required Func<Exception, bool> IsDocumented { get; init; }

    /// <summary>The most managed bytes a case of this input length may allocate on the parsing thread.</summary>
    public required Func<long, long> ManagedBound { get; init; }

    /// <summary>Bytes of native tensors created on this thread so far (a running counter), or null when the parser creates none.</summary>
    public Func<long>? NativeCounter { get; init; }

    /// <summary>The most native tensor bytes a case of this input length may create.</summary>
    public Func<long, long>? NativeBound { get; init; }

    public int Cases { get; init; } = 2000;

    public int Seed { get; init; } = 1;

    public TimeSpan PerCase { get; init; } = TimeSpan.FromSeconds(5);

    public MutationSummary Run()
    {
        var clock = Stopwatch.StartNew();
        long caseStart = 0;
        int current = int.MinValue, refused = 0;
        long maxManaged = 0;
        byte[] input = Array.Empty<byte>();
        string? failure = null;
        var worker = new Thread(() =>
        {
            var mutator = new ByteMutator(Seed);
            try
            {
                for (int i = -Seeds.Count; i < Cases; i++)
                {
                    input = i < 0 ? Seeds[Seeds.Count + i] : mutator.Mutate(Seeds);
                    Volatile.Write(ref caseStart, clock.ElapsedTicks);
                    Volatile.Write(ref current, i);
                    string? problem = RunCase(input, seed: i < 0, out bool wasRefused, ref maxManaged);
                    if (problem is not null) { failure = Describe(i, input, problem); return; }
                    if (wasRefused) refused++;
                }
            }
            catch (Exception ex)
            {
                failure = $"{Format}: the mutation run itself failed: {ex}";
            }
            finally
            {
                Volatile.Write(ref current, int.MaxValue);
            }
        }, 16 << 20) { IsBackground = true, Name = "mutation-" + Format };
        worker.Start();
        long limit = (long)(PerCase.TotalSeconds * Stopwatch.Frequency);
        while (!worker.Join(50))
        {
            int running = Volatile.Read(ref current);
            if (running != int.MaxValue && running != int.MinValue && clock.ElapsedTicks - Volatile.Read(ref caseStart) > limit
                && running == Volatile.Read(ref current))
                Assert.Fail(Describe(running, input, $"still running after {PerCase.TotalSeconds} s (a hang)"));
        }
        if (failure is not null) Assert.Fail(failure);
        var summary = new MutationSummary(Cases, refused, clock.Elapsed, maxManaged);
        Console.WriteLine($"{Format}: {summary}");
        // A mutation run in which nothing is refused mutates nothing that matters; one in which nothing is read never gets past the first check.
        Assert.IsTrue(refused > 0, $"{Format}: no mutant was refused ({summary})");
        return summary;
    }

    private string? RunCase(byte[] input, bool seed, out bool refused, ref long maxManaged)
    {
        refused = false;
        long nativeBefore = NativeCounter?.Invoke() ?? 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            Parse(input);
        }
        catch (Exception ex) when (!seed && IsDocumented(ex))
        {
            refused = true;
        }
        catch (Exception ex)
        {
            return seed ? $"the unmutated seed is not read: {ex}" : $"undocumented exception {ex}";
        }
        long managed = GC.GetAllocatedBytesForCurrentThread() - before;
        maxManaged = Math.Max(maxManaged, managed);
        if (managed > ManagedBound(input.Length))
            return $"allocated {managed} managed bytes for a {input.Length}-byte input (bound {ManagedBound(input.Length)})";
        if (NativeCounter is not null && NativeBound is not null)
        {
            long native = NativeCounter() - nativeBefore;
            if (native > NativeBound(input.Length))
                return $"created {native} bytes of tensors for a {input.Length}-byte input (bound {NativeBound(input.Length)})";
        }
        return null;
    }

    private string Describe(int index, byte[] input, string problem)
    {
        string folder = Path.Combine(Path.GetTempPath(), "cnn-mutation-failures");
        Directory.CreateDirectory(folder);
        string file = Path.Combine(folder, $"{Format}-seed{Seed}-case{index}.bin");
        File.WriteAllBytes(file, input);
        return $"{Format}: case {index} (mutation seed {Seed}; input saved to {file}): {problem}";
    }
}
