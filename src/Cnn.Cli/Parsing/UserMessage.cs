using System.Text.RegularExpressions;

namespace Cnn.Cli;

/// <summary>An exception's message as a user of the command line should read it: one line, without .NET's decorations.</summary>
internal static partial class UserMessage
{
    /// <summary>
    /// The innermost useful message (type-initialisation and reflection wrappers opened), on one line, without the
    /// <c>(Parameter 'x')</c> and <c>Actual value was …</c> that .NET appends to argument exceptions.
    /// </summary>
    public static string Of(Exception ex)
    {
        while (ex is TypeInitializationException or System.Reflection.TargetInvocationException or AggregateException && ex.InnerException is not null)
            ex = ex.InnerException!;
        string message = ex.Message.ReplaceLineEndings(" ");
        if (ex is ArgumentException)
            message = DotNetDecorations().Replace(message, "");
        return message.Trim();
    }

    [GeneratedRegex(@"\s*\(Parameter '[^']*'\)|\s*Actual value was [^.]*\.")]
    private static partial Regex DotNetDecorations();
}
