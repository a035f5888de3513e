using Cnn.Backbones.Native;

namespace Cnn.Backbones.Tests.Native;

[TestClass]
public sealed class NativeHeapTests
{
    private static Func<string, string?> Environment(params (string Name, string Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;

    /// <summary>
    /// The thresholds are set on Linux only, and a user's own malloc settings (glibc's variables, its malloc tunables, or
    /// CNN_MLNET_NATIVE_HEAP=default) win; other tunables do not count.
    /// </summary>
    [TestMethod]
    public void TheHeapIsLeftToTheUserWhereTheEnvironmentSetsMallocAndToGlibcOffLinux()
    {
        Assert.IsNull(NativeHeap.Refusal(linux: true, Environment()));
        Assert.IsNull(NativeHeap.Refusal(linux: true, Environment(("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX512F"))));
        Assert.AreEqual("not needed on this operating system", NativeHeap.Refusal(linux: false, Environment()));
        Assert.AreEqual("glibc's defaults kept: CNN_MLNET_NATIVE_HEAP=default",
            NativeHeap.Refusal(linux: true, Environment((NativeHeap.Variable, "Default"))));
        foreach (var variable in new[] { "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_" })
            Assert.AreEqual($"left to the environment: {variable} is set", NativeHeap.Refusal(linux: true, Environment((variable, "1048576"))));
        Assert.AreEqual("left to the environment: GLIBC_TUNABLES sets glibc.malloc tunables",
            NativeHeap.Refusal(linux: true, Environment(("GLIBC_TUNABLES", "glibc.cpu.x86_shstk=on:glibc.malloc.trim_threshold=0"))));
    }
}
