using Cnn.Analyzers;
using Cnn.Backbones.Native;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Cnn.Backbones.Tests.Analyzers;

/// <summary>
/// CNN0001 (<see cref="TemporaryScalarAnalyzer"/>) on a snippet: every line marked <c>// flagged</c> gets the diagnostic, and
/// no other line does (the held-scalar forms, tensor-and-tensor arithmetic, our optimizers).
/// </summary>
[TestClass]
public sealed class TemporaryScalarAnalyzerTests
{
    private const string Snippet = """
        using Cnn.Backbones.Native;
        using Cnn.Backbones.Optimizers;
        using TorchSharp;
        using static TorchSharp.torch;

        static class Sample
        {
            static void Run(Tensor a, Tensor b, Scalar held, double d)
            {
                var x1 = a * 0.5;                          // flagged
                var x2 = a + b;                            // flagged
                var x3 = a.div(2.0);                       // flagged
                var x4 = a.add_(b);                        // flagged
                var x5 = 1 - a;                            // flagged
                var x6 = held - a;                         // flagged
                var x7 = a + held;                         // flagged
                a += b;                                    // flagged
                float x8 = a.ToSingle();                   // flagged
                var x9 = a.ge(0);                          // flagged
                var x10 = arange(10);                      // flagged
                var x11 = a.square();                      // flagged
                var o1 = optim.Adam(new[] { new TorchSharp.Modules.Parameter(a) }, 0.1); // flagged
                var o2 = new TorchSharp.Modules.SGD(new[] { new TorchSharp.Modules.Parameter(a) }, 0.1); // flagged
                var m1 = nn.LeakyReLU(0.1);                // flagged
            var m3 = nn.BatchNorm2d(4);                // flagged

                var y1 = a.Times(0.5);
                var y2 = a.Plus(b);
                var y3 = a - b;
                var y4 = a * b;
                var y5 = a / b;
                var y6 = a.mul(held);
                var y7 = a * held;
                var y8 = a.add(b, Scalars.One);
                var y9 = a.ge(Scalars.Zero);
                float y10 = a.item<float>();
                var y11 = -a;
                using var s = Scalars.Held(d);
                var y12 = a.clamp_(s, s);
                var o3 = new HeldScalarAdamW(new[] { new TorchSharp.Modules.Parameter(a) }, 0.1);
                var o4 = new HeldScalarSgd(new[] { new TorchSharp.Modules.Parameter(a) }, 0.1);
                var m2 = nn.ReLU();
            }
        }
        """;

    [TestMethod]
    public void FlagsTemporaryScalarsAndNothingElse()
    {
        var tree = CSharpSyntaxTree.ParseText(Snippet);
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Append(typeof(TorchSharp.torch).Assembly.Location)
            .Append(typeof(Scalars).Assembly.Location)
            .Distinct()
            .Select(path => MetadataReference.CreateFromFile(path));
        // Named as the ML.NET layer, which sees the held-scalar helpers and optimizers (internal to Cnn.Backbones) as this snippet must.
        var compilation = CSharpCompilation.Create("Cnn.MLNet", [tree], references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.AreEqual(0, errors.Count, "the snippet compiles: " + string.Join("\n", errors));

        var diagnostics = compilation.WithAnalyzers([new TemporaryScalarAnalyzer()]).GetAnalyzerDiagnosticsAsync().Result;
        var lines = Snippet.Split('\n');
        var flaggedLines = diagnostics.Where(d => d.Id == TemporaryScalarAnalyzer.Id).Select(d => d.Location.GetLineSpan().StartLinePosition.Line).ToHashSet();
        var expected = Enumerable.Range(0, lines.Length).Where(i => lines[i].Contains("// flagged", StringComparison.Ordinal)).ToHashSet();
        Assert.IsTrue(expected.Count >= 15, "the snippet marks its flagged lines");
        var missed = expected.Except(flaggedLines).Select(i => lines[i].Trim());
        var extra = flaggedLines.Except(expected).Select(i => lines[i].Trim());
        Assert.AreEqual("", string.Join("\n", missed), "lines CNN0001 should flag");
        Assert.AreEqual("", string.Join("\n", extra), "lines CNN0001 should not flag");
        Assert.IsTrue(diagnostics.All(d => d.Severity == DiagnosticSeverity.Error), "CNN0001 is an error");
    }
}
