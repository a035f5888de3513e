using System.Reflection;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Cli;

/// <summary>
/// The training options' command line comes from their declarations (<see cref="CommandLineOptionAttribute"/> on
/// <see cref="CnnFitOptions"/>), and System.CommandLine supplies response files and shell completion.
/// </summary>
[TestClass]
public sealed class CommandLineDeclarationTests
{
    private static IEnumerable<CommandLineOptionAttribute> Declarations() =>
        typeof(CnnFitOptions).GetProperties().Select(p => p.GetCustomAttribute<CommandLineOptionAttribute>()).OfType<CommandLineOptionAttribute>();

    [TestMethod]
    public void EveryDeclaredOptionIsOnTheTrainingVerbsWithItsHelpText()
    {
        var declarations = Declarations().ToList();
        Assert.IsTrue(declarations.Count > 30, "CnnFitOptions declares its command-line options");
        foreach (var verb in new[] { "train", "distill" })
        {
            string help = CliHost.Succeed(verb, "--help");
            foreach (var declaration in declarations)
            {
                string first = declaration.Alias is null ? "    " + declaration.Name : declaration.Alias + ", " + declaration.Name;
                StringAssert.Contains(help, first, verb);
                StringAssert.Contains(help, declaration.HelpText, $"{verb} {declaration.Name}");
            }
        }
        // A declared range is the command line's: the message names the option and the range.
        var smoothing = Declarations().Single(d => d.Name == "--smoothing");
        StringAssert.Contains(CliHost.FailOneLine(2, "distill", "--smoothing", "2"),
            FormattableString.Invariant($"option --smoothing must be a number in [{smoothing.Min}, {smoothing.Max}], got '2'"));
    }

    [TestMethod]
    public void ResponseFilesAndCompletionComeFromSystemCommandLine()
    {
        using var dir = new TempDirectory();
        string arguments = dir.File("args.rsp");
        File.WriteAllLines(arguments, ["--limit 20", "--opt lion"]);
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "@" + arguments), "option --opt must be adamw or sgd, got 'lion'");

        // Completion of an enum option lists its declared words; of a verb, its options.
        const string line = "train --sched ";
        var words = CliHost.Succeed($"[suggest:{line.Length}]", line).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        CollectionAssert.AreEqual(new[] { "constant", "cosine", "onecycle" }, words);
        var options = CliHost.Succeed("[suggest:11]", "train --mix").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        CollectionAssert.AreEquivalent(new[] { "--mixup", "--mixup-prob", "--mixup-switch-prob" }, options);
    }
}
