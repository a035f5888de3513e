using Cnn.Tests.Shared;

namespace Cnn.Backbones.Tests.Fuzzing;

/// <summary>The mutation harness itself: deterministic, and each of its checks fails a run that breaks it.</summary>
[TestClass]
public sealed class MutationFuzzTests
{
    private static readonly byte[][] Seeds = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]];

    private static MutationFuzz Harness(Action<byte[]> parse, Func<long, long>? bound = null) => new()
    {
        Format = "self-test",
        Seeds = Seeds,
        Cases = 200,
        Parse = parse,
        IsDocumented = ex => ex is FormatException,
        ManagedBound = bound ?? (_ => 1L << 20),
        PerCase = TimeSpan.FromMilliseconds(300),
    };

    [TestMethod]
    public void TheSameSeedMakesTheSameMutants()
    {
        var a = new ByteMutator(7);
        var b = new ByteMutator(7);
        var c = new ByteMutator(8);
        var first = Enumerable.Range(0, 50).Select(_ => a.Mutate(Seeds)).ToList();
        Assert.IsTrue(first.Zip(Enumerable.Range(0, 50).Select(_ => b.Mutate(Seeds))).All(p => p.First.SequenceEqual(p.Second)));
        Assert.IsFalse(first.Zip(Enumerable.Range(0, 50).Select(_ => c.Mutate(Seeds))).All(p => p.First.SequenceEqual(p.Second)));
        Assert.IsTrue(first.Any(m => m.Length != Seeds[0].Length) && first.Any(m => m.Length == Seeds[0].Length && !m.SequenceEqual(Seeds[0])));
    }

    [TestMethod]
    public void DocumentedRefusalsPass()
    {
        var summary = Harness(bytes => { if (!bytes.SequenceEqual(Seeds[0])) throw new FormatException(); }).Run();
        Assert.AreEqual(200, summary.Cases);
        Assert.IsGreaterThan(150, summary.Refused);
    }

    [TestMethod]
    public void AnUndocumentedExceptionFails()
    {
        var error = Assert.ThrowsExactly<AssertFailedException>(() => Harness(bytes => { if (bytes.Length > 16) throw new IndexOutOfRangeException(); }).Run());
        StringAssert.Contains(error.Message, "undocumented exception System.IndexOutOfRangeException");
    }

    [TestMethod]
    public void AHangFails()
    {
        var error = Assert.ThrowsExactly<AssertFailedException>(() => Harness(bytes => { if (bytes.Length < 16) Thread.Sleep(5_000); }).Run());
        StringAssert.Contains(error.Message, "a hang");
    }

    [TestMethod]
    public void AnAllocationBeyondTheBoundFails()
    {
        var error = Assert.ThrowsExactly<AssertFailedException>(() =>
            Harness(bytes => GC.KeepAlive(new byte[bytes.Length > 16 ? 1 << 22 : 16]), bound: n => 64 * n + 4096).Run());
        StringAssert.Contains(error.Message, "managed bytes");
    }
}
