using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Cnn.MLNet.Tests.Deployment;

/// <summary>
/// Runs the programs that consume a plain ML.NET model (tests/PlainMLNet, examples/Serving) as processes of their own: they
/// reference ML.NET only, so running them in this test process (which has TorchSharp loaded) would prove nothing.
/// </summary>
internal static class SiblingProcess
{
    /// <summary>The built <c>.dll</c> of a project of this repository, in this test assembly's configuration (the test project builds it).</summary>
    public static string Built(string projectFolder, string assemblyName)
    {
        var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string dll = Path.Combine(ProjectDirectory(projectFolder), "bin", tfm.Parent!.Name, tfm.Name, assemblyName + ".dll");
        Assert.IsTrue(File.Exists(dll), $"{dll} is not built; build tests/Cnn.MLNet.Tests (it builds {projectFolder}).");
        return dll;
    }

    /// <summary>The project's restore output (<c>obj/project.assets.json</c>): every package and project in its dependency graph.</summary>
    public static IReadOnlyList<string> DependencyGraph(string projectFolder)
    {
        string assets = Path.Combine(ProjectDirectory(projectFolder), "obj", "project.assets.json");
        Assert.IsTrue(File.Exists(assets), assets);
        using var document = JsonDocument.Parse(File.ReadAllText(assets));
        return document.RootElement.GetProperty("libraries").EnumerateObject().Select(p => p.Name).ToList();
    }

    /// <summary>The folder of a project of this repository (this assembly runs from tests/Cnn.MLNet.Tests/bin/&lt;configuration&gt;/&lt;tfm&gt;).</summary>
    public static string ProjectDirectory(string projectFolder)
    {
        var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        return Path.Combine(tfm.Parent!.Parent!.Parent!.Parent!.Parent!.FullName, projectFolder);
    }

    /// <summary>Runs <c>dotnet <paramref name="dll"/> args</c> to its end (at most <paramref name="timeout"/>); returns the exit code and output.</summary>
    public static (int Exit, string Output, string Error) Run(string dll, TimeSpan timeout, params string[] args)
    {
        using var process = Start(dll, args);
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{Path.GetFileName(dll)} did not finish in {timeout.TotalSeconds} s");
        }
        return (process.ExitCode, output.Result, error.Result);
    }

    /// <summary>Starts <c>dotnet <paramref name="dll"/> args</c> with redirected output.</summary>
    public static Process Start(string dll, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        return Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
    }

    /// <summary>A loopback port free at the time of asking.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
