using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace Cnn.Analyzers;

/// <summary>
/// CNN0001: a TorchSharp call that makes a temporary <c>TorchSharp.Scalar</c>.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 passes a <c>Scalar</c>'s native handle to libtorch and keeps no reference to the managed object during
/// the call. A temporary scalar (<c>x * 0.5</c>, <c>x.div(2.0)</c>, <c>a + b</c>, which is <c>add(b, 1)</c>) is garbage as
/// soon as its handle is read, so a garbage collection that another thread starts meanwhile can finalize it and free the
/// c10::Scalar while libtorch is still reading it: "Unknown scalar type" at random, or a silently wrong value (CI saw both
/// RegNet's width computation and Adam's step fail this way). Scalars we hold for the call (<c>Cnn.Backbones.Native.Scalars</c>)
/// stay reachable until it returns. This analyzer finds the forms that make temporaries, in our code and in the TorchSharp
/// members that make them internally (<see cref="RacyMembers"/>), so no new one slips in.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class TemporaryScalarAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The rule's identifier.</summary>
    public const string Id = "CNN0001";

    private static readonly DiagnosticDescriptor Rule = new(
        Id,
        "TorchSharp call with a temporary Scalar",
        "{0} makes a temporary TorchSharp Scalar that the garbage collector can free while libtorch still reads it; {1}",
        "Reliability",
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        description: "TorchSharp keeps no reference to a Scalar during the native call it is passed to. Hold the scalar for the call: " +
                     "Cnn.Backbones.Native.Scalars (Times, Plus, DividedBy, Held, One) or 'using var s = value.ToScalar();'.");

    private const string UseOptimizers = "use Cnn.Backbones.Optimizers (HeldScalarSgd, HeldScalarAdamW)";

    private const string UseHelpers = "use Cnn.Backbones.Native.Scalars (Plus, Times, DividedBy, Held) or a 'using' ToScalar()";

    /// <summary>
    /// TorchSharp members that make temporary scalars inside (from reading TorchSharp 0.107's source): name, the parameter count
    /// that does (-1: any), and what to use instead.
    /// </summary>
    private static readonly (string Type, string Member, int Parameters, string Instead)[] RacyMembers =
    [
        ("Tensor", "add", 1, "add(x, Scalars.One) or Plus"),
        ("Tensor", "add_", 1, "add_(x, Scalars.One) or PlusInPlace"),
        ("Tensor", "addcdiv", 2, "addcdiv(a, b, Scalars.One)"),
        ("Tensor", "addcdiv_", 2, "addcdiv_(a, b, Scalars.One)"),
        ("Tensor", "square", 0, "x * x or pow with a held exponent"),
        ("Tensor", "softplus", -1, "a held-scalar formulation"),
        ("Tensor", "elu", -1, "a held-scalar formulation"),
        ("Tensor", "elu_", -1, "a held-scalar formulation"),
        ("Tensor", "celu", -1, "a held-scalar formulation"),
        ("Tensor", "celu_", -1, "a held-scalar formulation"),
        ("torch", "arange", 4, "Scalars.Arange or arange with held start, stop and step"),
        ("torch", "arange", 5, "Scalars.Arange or arange with held start, stop and step"),
        ("torch", "normal", -1, "randn(...).TimesInPlace(std).PlusInPlace(mean)"),
        ("TensorExtensionMethods", "ToSingle", 1, "item<float>()"),
        ("TensorExtensionMethods", "ToDouble", 1, "item<double>()"),
        ("TensorExtensionMethods", "ToInt32", 1, "item<int>()"),
        ("TensorExtensionMethods", "ToInt64", 1, "item<long>()"),
        ("TensorExtensionMethods", "ToBoolean", 1, "item<bool>()"),
        ("TensorExtensionMethods", "ToHalf", 1, "item<Half>()"),
        ("TensorExtensionMethods", "ToBFloat16", 1, "item<BFloat16>()"),
    ];

    /// <summary>
    /// TorchSharp modules whose forward makes temporary scalars (the BatchNorms count <c>num_batches_tracked</c> with
    /// <c>add_(1)</c> in training: Cnn.Backbones.Compute.Ops.BatchNorm2d does not).
    /// </summary>
    private static readonly string[] RacyModules =
        ["LeakyReLU", "Hardtanh", "Threshold", "CELU", "ELU", "Hardshrink", "Softshrink", "PReLU", "Softsign", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d"];

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => [Rule];

    /// <inheritdoc />
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterOperationAction(AnalyzeConversion, OperationKind.Conversion);
        context.RegisterOperationAction(AnalyzeBinary, OperationKind.Binary);
        context.RegisterOperationAction(AnalyzeCompoundAssignment, OperationKind.CompoundAssignment);
        context.RegisterOperationAction(AnalyzeInvocation, OperationKind.Invocation);
        context.RegisterOperationAction(AnalyzeCreation, OperationKind.ObjectCreation);
    }

    private static void AnalyzeConversion(OperationAnalysisContext context)
    {
        var conversion = (IConversionOperation)context.Operation;
        if (conversion.OperatorMethod is not { } method || !IsTorchSharp(method)) return;
        if (conversion.Type?.Name == "Scalar")
            Report(context, $"Converting '{conversion.Operand.Syntax}' to Scalar", UseHelpers);
        else if (conversion.Operand.Type?.Name == "Tensor")
            Report(context, $"Converting a Tensor to {conversion.Type?.Name}", "use item<T>()");
    }

    private static void AnalyzeBinary(OperationAnalysisContext context)
    {
        var binary = (IBinaryOperation)context.Operation;
        if (binary.OperatorMethod is { } method && MakesTemporary(method, binary.OperatorKind))
            Report(context, $"TorchSharp's operator '{binary.Syntax}'", UseHelpers);
    }

    private static void AnalyzeCompoundAssignment(OperationAnalysisContext context)
    {
        var assignment = (ICompoundAssignmentOperation)context.Operation;
        if (assignment.OperatorMethod is { } method && MakesTemporary(method, assignment.OperatorKind))
            Report(context, $"TorchSharp's operator '{assignment.Syntax}'", UseHelpers);
    }

    /// <summary>
    /// TorchSharp's Tensor operators that make a scalar: every '+' (it is add(other, 1)), any with a number operand, and
    /// 'scalar - tensor' (negative().add(scalar)). Tensor-and-tensor or tensor-and-held-scalar '-', '*', '/' and '%' do not.
    /// </summary>
    private static bool MakesTemporary(IMethodSymbol method, BinaryOperatorKind kind)
    {
        if (!IsTorchSharp(method) || method.ContainingType.Name != "Tensor") return false;
        if (kind == BinaryOperatorKind.Add) return true;
        if (method.Parameters.Any(p => p.Type.SpecialType != SpecialType.None)) return true;
        return kind == BinaryOperatorKind.Subtract && method.Parameters[0].Type.Name == "Scalar";
    }

    private static void AnalyzeInvocation(OperationAnalysisContext context)
    {
        var invocation = (IInvocationOperation)context.Operation;
        var method = invocation.TargetMethod;
        if (!IsTorchSharp(method)) return;
        int parameters = method.Parameters.Length;
        foreach (var (type, member, count, instead) in RacyMembers)
        {
            if (method.Name == member && method.ContainingType.Name == type && (count < 0 || count == parameters))
            {
                Report(context, $"TorchSharp's {type}.{member}", "use " + instead);
                return;
            }
        }
        if (method.ContainingType.Name == "optim" && IsOptimizer(method.ReturnType))
            Report(context, $"TorchSharp's optimizer {method.Name} (its step)", UseOptimizers);
        else if (method.ContainingType.Name == "nn" && Array.IndexOf(RacyModules, method.Name) >= 0)
            Report(context, $"TorchSharp's {method.Name} module (its forward)", "use the tensor functions with held scalars");
    }

    private static void AnalyzeCreation(OperationAnalysisContext context)
    {
        var creation = (IObjectCreationOperation)context.Operation;
        if (creation.Type is INamedTypeSymbol type && IsTorchSharp(type) && IsOptimizer(type))
            Report(context, $"TorchSharp's optimizer {type.Name} (its step)", UseOptimizers);
    }

    /// <summary>A TorchSharp optimizer implemented in C# (every one but LBFGS), whose step makes scalars per parameter.</summary>
    private static bool IsOptimizer(ITypeSymbol type)
    {
        for (var t = type; t is not null; t = t.BaseType)
        {
            if (t.Name == "OptimizerHelper") return true;
        }
        return false;
    }

    private static bool IsTorchSharp(ISymbol symbol) => symbol.ContainingAssembly?.Name == "TorchSharp";

    private static void Report(OperationAnalysisContext context, string what, string instead) =>
        context.ReportDiagnostic(Diagnostic.Create(Rule, context.Operation.Syntax.GetLocation(), what, instead));
}
