using System.Diagnostics;
using System.Text.RegularExpressions;
using Cnn.Backbones.Native;

namespace Cnn.Backbones.Tests.Native;

[TestClass]
public sealed class ElfImageTests
{
    private static string TorchSharpLibrary()
    {
        string? found = new[] { AppContext.BaseDirectory, Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native") }
            .Select(d => Path.Combine(d, "libLibTorchSharp.so")).FirstOrDefault(File.Exists);
        Assert.IsNotNull(found, "libLibTorchSharp.so is not next to the test assembly");
        return found;
    }

    private static string Readelf(string arguments)
    {
        var info = new ProcessStartInfo("readelf", arguments) { RedirectStandardOutput = true, UseShellExecute = false };
        using var process = Process.Start(info)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.AreEqual(0, process.ExitCode, $"readelf {arguments}");
        return output;
    }

    [TestMethod]
    public void VersionNeedsMatchReadelf()
    {
        string library = TorchSharpLibrary();
        var needs = ElfImage.Load(library).ReadVersionNeeds();
        // readelf -V lists "File: libstdc++.so.6 Cnt: 20" then "Name: GLIBCXX_3.4.32  Flags: none  Version: 18".
        string text = Readelf($"-V --wide {library}");
        var expected = new List<string>();
        string file = "";
        foreach (var line in text.Split('\n'))
        {
            var fileMatch = Regex.Match(line, @"Version: \d+\s+File: (\S+)");
            if (fileMatch.Success) { file = fileMatch.Groups[1].Value; continue; }
            var nameMatch = Regex.Match(line, @"Name: (\S+)\s+Flags: (\S+)\s+Version: (\d+)");
            if (nameMatch.Success && line.Contains("0x", StringComparison.Ordinal) && text.IndexOf(line, StringComparison.Ordinal) > text.IndexOf(".gnu.version_r", StringComparison.Ordinal))
                expected.Add($"{file} {nameMatch.Groups[1].Value} {nameMatch.Groups[3].Value} {(nameMatch.Groups[2].Value == "WEAK" ? "weak" : "strong")}");
        }
        var actual = needs.Select(n => $"{n.File} {n.Version} {n.Index} {(n.IsWeak ? "weak" : "strong")}").ToList();
        CollectionAssert.AreEqual(expected, actual);
        Assert.IsTrue(needs.Any(n => n.File == "libstdc++.so.6" && n.Version == "GLIBCXX_3.4.32"));
    }

    [TestMethod]
    public void VersionDefinitionsOfLibstdcxxMatchReadelf()
    {
        string libstdcxx = new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6" }
            .FirstOrDefault(File.Exists) ?? throw new AssertInconclusiveException("no system libstdc++.so.6 at the usual places");
        var definitions = ElfImage.Load(libstdcxx).ReadVersionDefinitions();
        var expected = Regex.Matches(Readelf($"-V --wide {libstdcxx}"), @"Name: ((?:GLIBCXX|CXXABI)_\S+)\s*$", RegexOptions.Multiline)
            .Select(m => m.Groups[1].Value).ToHashSet();
        Assert.IsTrue(expected.Count > 10);
        CollectionAssert.AreEquivalent(expected.ToList(), definitions.Where(d => d.StartsWith("GLIBCXX_") || d.StartsWith("CXXABI_")).ToList());
    }

    [TestMethod]
    public void OnlyTheMarkerSymbolIsBoundToGlibcxx3432()
    {
        var image = ElfImage.Load(TorchSharpLibrary());
        var need = image.ReadVersionNeeds().Single(n => n.Version == "GLIBCXX_3.4.32");
        CollectionAssert.AreEqual(new[] { "_ZSt21ios_base_library_initv" }, image.SymbolsBoundToVersion(need.Index).ToList());
        Assert.IsTrue(image.SymbolsBoundToVersion(image.ReadVersionNeeds().Single(n => n.Version == "GLIBC_2.2.5" && n.File == "libc.so.6").Index).Count > 10);
    }

    [TestMethod]
    public void MarkingWeakChangesExactlyTheTwoFlagBytes()
    {
        byte[] original = File.ReadAllBytes(TorchSharpLibrary());
        byte[] patched = (byte[])original.Clone();
        var need = ElfImage.Parse(patched).ReadVersionNeeds().Single(n => n.Version == "GLIBCXX_3.4.32");
        Assert.IsFalse(need.IsWeak);
        ElfImage.MarkVersionNeedWeak(patched, need);
        var changed = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        Assert.AreEqual(1, changed.Count, "only the low byte of vna_flags changes (0x0 -> 0x2)");
        Assert.IsTrue(changed[0] >= need.FlagsOffset && changed[0] < need.FlagsOffset + 2);
        var after = ElfImage.Parse(patched).ReadVersionNeeds();
        Assert.IsTrue(after.Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak);
        Assert.AreEqual(1, after.Count(n => n.IsWeak));

        // readelf agrees that the need is now weak.
        using var folder = new Cnn.Tests.Shared.TempDirectory();
        File.WriteAllBytes(folder.File("patched.so"), patched);
        StringAssert.Matches(Readelf($"-V --wide {folder.File("patched.so")}"), new Regex(@"Name: GLIBCXX_3\.4\.32\s+Flags: WEAK"));
    }

    [TestMethod]
    public void DamagedFilesAreRejectedClearly()
    {
        byte[] library = File.ReadAllBytes(TorchSharpLibrary());
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => ElfImage.Parse(new byte[10], "tiny")).Message, "not an ELF");
        var notElf = (byte[])library.Clone();
        notElf[1] = (byte)'X';
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => ElfImage.Parse(notElf, "x")).Message, "bad magic");
        var elf32 = (byte[])library.Clone();
        elf32[4] = 1;
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => ElfImage.Parse(elf32, "x")).Message, "64-bit");
        var bigEndian = (byte[])library.Clone();
        bigEndian[5] = 2;
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => ElfImage.Parse(bigEndian, "x")).Message, "little-endian");
        // Truncated: the section header table (at the end of the file) is cut off.
        var truncated = library.AsSpan(0, library.Length / 2).ToArray();
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => ElfImage.Parse(truncated, "half.so")).Message, "outside the file");
    }
}
