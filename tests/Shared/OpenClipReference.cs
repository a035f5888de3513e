
namespace Cnn.Tests.Shared;

/// <summary>Runs OpenCLIP (../shared/reference/open_clip, a test oracle only) under the reference Python at test time.</summary>
internal static class OpenClipReference
{
    /// <summary>The reference folder: CNN_REFERENCE_DIR, else the first <c>shared/reference</c> above the test's directory.</summary>
    public static string Folder
    {
        get
        {
            if (Environment.GetEnvironmentVariable("CNN_REFERENCE_DIR") is { Length: > 0 } configured) return configured;
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                foreach (var candidate in new[] { Path.Combine(dir.FullName, "shared", "reference"), Path.Combine(dir.FullName, "..", "shared", "reference") })
                    if (Directory.Exists(Path.Combine(candidate, "open_clip", "open_clip"))) return Path.GetFullPath(candidate);
            }
            Assert.Inconclusive("OpenCLIP's reference source (shared/reference/open_clip) was not found above the test directory; set CNN_REFERENCE_DIR.");
            return "";
        }
    }

    /// <summary>The lines every reference script starts with: sys.path set up for open_clip (and its timm), the shims appended.</summary>
    public static string Prelude => $$"""
        import os, sys, json
        REF = {{PythonString(Folder)}}
        sys.dont_write_bytecode = True
        sys.path.insert(0, os.path.join(REF, 'timm'))
        sys.path.insert(0, os.path.join(REF, 'open_clip'))
        sys.path.append(os.path.join(REF, 'shims'))
        import logging
        logging.disable(logging.WARNING)
        import torch
        torch.set_num_threads(1)
        import open_clip

        """;

    /// <summary>Runs the prelude followed by <paramref name="body"/> (unindented Python) and returns its standard output.</summary>
    public static string Run(string body, params string[] arguments) => ReferencePython.Run(Prelude + body, arguments);

    private static string PythonString(string value) => "'" + value.Replace("\\", "\\\\").Replace("'", "\\'") + "'";
}
