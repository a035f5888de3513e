using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TorchSharp;

namespace Cnn.Backbones.Native;

/// <summary>
/// Makes TorchSharp's native library load on Linux systems whose libstdc++ is older than the one it was built against.
/// </summary>
/// <remarks>
/// <para>TorchSharp 0.107's <c>libLibTorchSharp.so</c> records a need for <c>GLIBCXX_3.4.32</c> (GCC 13) only because GCC 13
/// emits an undefined marker symbol, <c>std::ios_base_library_init()</c>, that no relocation uses. On Debian 12 or Ubuntu 22.04
/// the dynamic loader refuses the library for it. When, and only when, the system libstdc++ lacks a needed version and every
/// symbol bound to that version is such a marker, this class writes a copy of the library to a per-user cache with that one
/// version need marked weak (<c>VER_FLG_WEAK</c>), loads the copy, and routes TorchSharp's imports to it. The NuGet cache and
/// system files are never modified. Everywhere else (Windows, macOS, new enough libstdc++) it does nothing. Set
/// <c>CNN_MLNET_NO_NATIVE_PATCH=1</c> where rewriting a native library is not allowed: the copy is then never made.</para>
/// <para>The native backend is the application's choice: Cnn.Backbones references the managed <c>TorchSharp</c> package only, and
/// the application adds <c>libtorch-cpu-linux-x64</c>, <c>libtorch-cpu-win-x64</c>, <c>libtorch-cpu-osx-arm64</c> or a
/// <c>libtorch-cuda-*</c> package. Without one, <see cref="EnsureLoaded"/> throws a <see cref="TorchNativeLoadException"/>
/// naming them.</para>
/// <para>It runs automatically when the Cnn.Backbones assembly loads; call <see cref="EnsureLoaded"/> yourself before using
/// TorchSharp directly, without touching a Cnn.Backbones type first.</para>
/// </remarks>
public static class TorchRuntime
{
    /// <summary>Undefined marker symbols that carry a version need but are never relocated against.</summary>
    private static readonly HashSet<string> MarkerSymbols = new(StringComparer.Ordinal)
    {
        "_ZSt21ios_base_library_initv", // std::ios_base_library_init(), emitted by GCC 13 for <iostream>
    };

    private const string LibraryFile = "libLibTorchSharp.so";

    /// <summary>Environment variable that turns the compatible copy off when set to <c>1</c>.</summary>
    public const string NoNativePatchVariable = "CNN_MLNET_NO_NATIVE_PATCH";

    /// <summary>The backend packages an application may add, for the messages.</summary>
    private const string BackendPackages =
        "libtorch-cpu-linux-x64, libtorch-cpu-win-x64 or libtorch-cpu-osx-arm64 (CPU), libtorch-cuda-12.8-linux-x64 or " +
        "libtorch-cuda-12.8-win-x64 (CUDA), version 2.10.0 as TorchSharp 0.107 needs";
    private static readonly object Gate = new();
    private static bool _done;
    private static Exception? _failure;
    private static IntPtr _patchedHandle;

    /// <summary>What <see cref="EnsureLoaded"/> did, for diagnostics (e.g. "patched copy at …" or "not needed").</summary>
    public static string Status { get; private set; } = "not run";

    /// <summary>Whether oneDNN's instruction set was capped for this processor, and why (see the README's "Native runtime").</summary>
    public static string OneDnnStatus => OneDnnGuard.Status;

    /// <summary>
    /// Whether glibc's heap keeps the memory a training step frees for the next step, from the first step of a training run on,
    /// instead of handing it back to the kernel (see docs/troubleshooting.md, "The native heap during training"); or why not.
    /// </summary>
    public static string NativeHeapStatus => NativeHeap.Status;

    /// <summary>Path of the patched library copy when one is in use; otherwise null.</summary>
    public static string? PatchedLibraryPath { get; private set; }

    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "TorchSharp's native library must be prepared before any TorchSharp call made through this assembly.")]
    internal static void OnModuleLoad()
    {
        try { Prepare(); }
        catch (Exception ex) { _failure = ex; }
    }

    /// <summary>
    /// Prepares (if needed) and initializes TorchSharp's native backend, then checks it with a tiny tensor operation.
    /// Safe to call many times from any thread.
    /// </summary>
    /// <exception cref="TorchNativeLoadException">The native library cannot be loaded; the message says what is missing and how to fix it.</exception>
    public static void EnsureLoaded()
    {
        Prepare();
        try
        {
            using var probe = torch.zeros(1);
        }
        catch (Exception ex) when (ex is TypeInitializationException or DllNotFoundException or NotSupportedException or EntryPointNotFoundException or BadImageFormatException)
        {
            string cause = Innermost(ex).Message.Split('\n')[0].Trim();
            if (!HasBackend())
                throw new TorchNativeLoadException(
                    "TorchSharp's native backend (LibTorch) is missing: Cnn.Backbones references the managed TorchSharp package only, " +
                    $"and the application chooses the backend. Fix: add one backend package to your application project: {BackendPackages}; " +
                    $"e.g. 'dotnet add package libtorch-cpu-linux-x64 --version 2.10.0'. (Cause: {cause})", ex);
            string patchHint = PatchDisabled()
                ? $"{NoNativePatchVariable}=1 is set, so no compatible copy was made: unset it, or install libstdc++6 from GCC 13 or newer."
                : "on Linux install libstdc++6 from GCC 13 or newer, or leave the folder given by CNN_MLNET_NATIVE_CACHE (default " +
                  "~/.cache/cnn-mlnet/native) writable so the compatible copy can be made.";
            throw new TorchNativeLoadException(
                $"TorchSharp's native library could not be loaded ({Status}). Cause: {cause} " +
                $"Fix: make sure your application references one backend package ({BackendPackages}) and its runtimes/<rid>/native " +
                $"folder is next to the application; {patchHint}", ex);
        }
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null) ex = ex.InnerException;
        return ex;
    }

    private static void Prepare()
    {
        lock (Gate)
        {
            if (_done)
            {
                if (_failure is not null) throw _failure;
                return;
            }
            _done = true;
            try
            {
                PrepareCore();
            }
            catch (Exception ex)
            {
                _failure = ex is TorchNativeLoadException ? ex : new TorchNativeLoadException($"Preparing TorchSharp's native library failed: {ex.Message}", ex);
                Status = "failed: " + ex.Message;
                throw _failure;
            }
        }
    }

    private static void PrepareCore()
    {
        OneDnnGuard.Apply();
        NativeHeap.Apply();
        if (!OperatingSystem.IsLinux())
        {
            Status = "not needed on this operating system";
            return;
        }
        if (PatchDisabled())
        {
            Status = $"compatible copy disabled by {NoNativePatchVariable}=1; left to TorchSharp's own loader";
            return;
        }
        string? original = FindLibrary();
        if (original is null)
        {
            Status = $"{LibraryFile} not found next to the application; TorchSharp's own loader will search for it";
            return;
        }
        string? libstdcxx = FindLoadedLibstdcxx();
        if (libstdcxx is null)
        {
            Status = "libstdc++.so.6 not found in this process; left to TorchSharp's own loader";
            return;
        }

        byte[] bytes = File.ReadAllBytes(original);
        var image = ElfImage.Parse(bytes, original);
        var available = ElfImage.Load(libstdcxx).ReadVersionDefinitions();
        var missing = image.ReadVersionNeeds()
            .Where(n => n.File.StartsWith("libstdc++.so", StringComparison.Ordinal) && !n.IsWeak && !available.Contains(n.Version))
            .ToList();
        if (missing.Count == 0)
        {
            Status = $"not needed: {libstdcxx} provides every version {LibraryFile} needs";
            return;
        }

        foreach (var need in missing)
        {
            var bound = image.SymbolsBoundToVersion(need.Index);
            var real = bound.Where(s => !MarkerSymbols.Contains(s)).ToList();
            if (real.Count > 0)
                throw new TorchNativeLoadException(
                    $"{original} needs {need.Version} from {need.File}, which the system's {libstdcxx} lacks, and real symbols use it " +
                    $"({string.Join(", ", real.Take(5))}). Install libstdc++6 from GCC 13 or newer (e.g. a newer distribution release).");
        }
        foreach (var need in missing)
            ElfImage.MarkVersionNeedWeak(bytes, need);

        string patched;
        try
        {
            patched = WritePatchedCopy(original, bytes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new TorchNativeLoadException(
                $"{LibraryFile} needs {string.Join(", ", missing.Select(m => m.Version))}, which the system's {libstdcxx} lacks, and the " +
                $"compatible copy could not be written to '{CacheRoot()}' ({ex.Message}). Set CNN_MLNET_NATIVE_CACHE to a writable folder, " +
                "or install libstdc++6 from GCC 13 or newer.", ex);
        }
        string directory = Path.GetDirectoryName(original)!;
        // The copy lives elsewhere, so its $ORIGIN run path no longer finds libtorch: load libtorch from the original folder
        // first; the copy's DT_NEEDED entries then resolve to the already-loaded objects by soname.
        foreach (var dependency in new[] { "libtorch.so" })
        {
            string path = Path.Combine(directory, dependency);
            if (File.Exists(path)) NativeLibrary.Load(path);
        }
        _patchedHandle = NativeLibrary.Load(patched);
        PatchedLibraryPath = patched;
        NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, Resolve);
        Status = $"patched copy at {patched} (weak: {string.Join(", ", missing.Select(m => m.Version))}; system {libstdcxx})";
    }

    private static IntPtr Resolve(string libraryName, System.Reflection.Assembly assembly, DllImportSearchPath? searchPath)
        => libraryName is "LibTorchSharp" or LibraryFile ? _patchedHandle : IntPtr.Zero;

    private static string WritePatchedCopy(string original, byte[] bytes)
    {
        string hash = Convert.ToHexString(SHA256.HashData(bytes))[..16].ToLowerInvariant();
        string directory = Path.Combine(CacheRoot(), hash);
        string target = Path.Combine(directory, LibraryFile);
        if (File.Exists(target) && new FileInfo(target).Length == bytes.Length)
            return target;
        Directory.CreateDirectory(directory);
        string temporary = Path.Combine(directory, $"{LibraryFile}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, target, overwrite: true); // atomic rename: concurrent processes see either nothing or the whole file
        return target;
    }

    private static string CacheRoot()
    {
        string? configured = Environment.GetEnvironmentVariable("CNN_MLNET_NATIVE_CACHE");
        if (!string.IsNullOrWhiteSpace(configured))
            return configured;
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string root = !string.IsNullOrWhiteSpace(xdg) ? xdg : !string.IsNullOrWhiteSpace(home) ? Path.Combine(home, ".cache") : Path.GetTempPath();
        return Path.Combine(root, "cnn-mlnet", "native");
    }

    private static bool PatchDisabled() => Environment.GetEnvironmentVariable(NoNativePatchVariable)?.Trim() == "1";

    /// <summary>Whether a LibTorch backend's main library lies in one of the folders the application loads native code from.</summary>
    private static bool HasBackend()
    {
        string file = OperatingSystem.IsWindows() ? "torch_cpu.dll" : OperatingSystem.IsMacOS() ? "libtorch_cpu.dylib" : "libtorch_cpu.so";
        return NativeFolders().Any(d => File.Exists(Path.Combine(d, file)));
    }

    private static List<string> NativeFolders()
    {
        var candidates = new List<string>();
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string searchDirectories)
            candidates.AddRange(searchDirectories.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        string torchDirectory = Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? AppContext.BaseDirectory;
        foreach (var baseDirectory in new[] { AppContext.BaseDirectory, torchDirectory })
        {
            candidates.Add(baseDirectory);
            candidates.Add(Path.Combine(baseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native"));
            candidates.Add(Path.Combine(baseDirectory, "runtimes", "linux-x64", "native"));
        }
        return candidates;
    }

    private static string? FindLibrary()
    {
        return NativeFolders()
            .Select(d => Path.Combine(d, LibraryFile))
            .FirstOrDefault(p => File.Exists(p) && File.Exists(Path.Combine(Path.GetDirectoryName(p)!, "libtorch.so")));
    }

    private static string? FindLoadedLibstdcxx()
    {
        // The .NET host links libstdc++, so it is already mapped; /proc/self/maps gives the exact file the loader chose.
        NativeLibrary.TryLoad("libstdc++.so.6", out _);
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/');
                if (slash < 0) continue;
                string path = line[slash..].Trim();
                if (Path.GetFileName(path).StartsWith("libstdc++.so", StringComparison.Ordinal) && File.Exists(path))
                    return path;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}

/// <summary>TorchSharp's native library could not be prepared or loaded. The message says what is missing and how to fix it.</summary>
public sealed class TorchNativeLoadException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TorchNativeLoadException(string message, Exception? inner = null) : base(message, inner) { }
}
