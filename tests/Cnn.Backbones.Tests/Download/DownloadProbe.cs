using Cnn.Tests.Shared;
using System.Diagnostics;
using Cnn.Backbones.Weights.Download;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Cnn.Backbones.Tests.Download;

/// <summary>
/// A second .NET process that fetches one file with <see cref="WeightStore"/>: a tiny program compiled here with Roslyn and run
/// with <c>dotnet exec</c>, loading this library from the test's output folder. Its environment is its own (cache folders,
/// proxies), so tests set variables for it without touching this process's.
/// </summary>
internal static class DownloadProbe
{
    private const string Source = """
        using System;
        using System.IO;
        using System.Reflection;
        using System.Runtime.CompilerServices;
        using Cnn.Backbones.Weights.Download;

        public static class Program
        {
            public static int Main(string[] args)
            {
                // Before any method that names the library is compiled: find it (and Polly) in the test's output folder.
                AppDomain.CurrentDomain.AssemblyResolve += (_, e) =>
                {
                    string path = Path.Combine(args[0], new AssemblyName(e.Name).Name + ".dll");
                    return File.Exists(path) ? Assembly.LoadFrom(path) : null;
                };
                return Run(args);
            }

            [MethodImpl(MethodImplOptions.NoInlining)]
            private static int Run(string[] args)
            {
                var options = WeightStoreOptions.FromEnvironment();
                options.MaxRetries = 0;
                options.Progress = null;
                options.AllowInsecureHttp = args.Length > 3 && args[3] == "insecure";
                using var store = new WeightStore(options);
                try
                {
                    Console.WriteLine("PATH=" + store.GetFileAsync(new Uri(args[1]), args[2]).GetAwaiter().GetResult());
                    return 0;
                }
                catch (WeightDownloadException e)
                {
                    Console.WriteLine("ERROR=" + e.Message);
                    return 3;
                }
            }
        }
        """;

    private static readonly Lazy<string> Compiled = new(Compile);

    /// <summary>Starts the probe fetching <paramref name="url"/>; <paramref name="environment"/> is added to (or removes from) the child's.</summary>
    public static Process Start(Uri url, string sha256Prefix, IReadOnlyDictionary<string, string?> environment, bool insecure = false)
    {
        var info = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string program = Compiled.Value;
        foreach (string argument in new[] { "exec", "--runtimeconfig", Path.ChangeExtension(program, ".runtimeconfig.json"), program,
                                            AppContext.BaseDirectory, url.ToString(), sha256Prefix, insecure ? "insecure" : "secure" })
            info.ArgumentList.Add(argument);
        foreach (string name in new[] { "CNN_HOME", "CNN_OFFLINE", "HF_HUB_OFFLINE", "CNN_WEIGHTS_MIRROR", "XDG_CACHE_HOME",
                                        "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy" })
            info.Environment.Remove(name);
        foreach (var (name, value) in environment)
        {
            if (value is null) info.Environment.Remove(name);
            else info.Environment[name] = value;
        }
        return Process.Start(info) ?? throw new InvalidOperationException("Could not start the download probe.");
    }

    /// <summary>Waits for the probe (at most a minute) and returns its exit code and standard output.</summary>
    public static (int ExitCode, string Output) Finish(Process probe)
    {
        var output = probe.StandardOutput.ReadToEndAsync();
        var errors = probe.StandardError.ReadToEndAsync();
        if (!probe.WaitForExit(TimeSpan.FromMinutes(1)))
        {
            probe.Kill();
            Assert.Fail("The download probe did not finish within a minute.");
        }
        probe.WaitForExit();
        return (probe.ExitCode, output.Result + errors.Result);
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private static string Compile()
    {
        string folder = Path.Combine(Path.GetTempPath(), "cnn-download-probe-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Append(typeof(WeightStore).Assembly.Location)
            .Distinct()
            .Select(path => MetadataReference.CreateFromFile(path));
        var compilation = CSharpCompilation.Create("DownloadProbe", [CSharpSyntaxTree.ParseText(Source)], references,
                                                   new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Disable));
        string program = Path.Combine(folder, "DownloadProbe.dll");
        var result = compilation.Emit(program);
        Assert.IsTrue(result.Success, "the probe compiles: " + string.Join("\n", result.Diagnostics));
        var version = Environment.Version;
        string framework = $"{version.Major}.{version.Minor}";
        File.WriteAllText(Path.ChangeExtension(program, ".runtimeconfig.json"),
            "{\"runtimeOptions\": {\"tfm\": \"net" + framework + "\", \"framework\": {\"name\": \"Microsoft.NETCore.App\", \"version\": \"" + framework + ".0\"}}}");
        return program;
    }
}
