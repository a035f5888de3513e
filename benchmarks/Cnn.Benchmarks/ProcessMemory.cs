using System.Globalization;

namespace Cnn.Benchmarks;

/// <summary>This process's resident memory as the kernel counts it (<c>/proc/self/status</c>); 0 where there is none.</summary>
internal static class ProcessMemory
{
    /// <summary>The peak resident set size so far (<c>VmHWM</c>), in bytes.</summary>
    public static long PeakResidentBytes() => Read("VmHWM:");

    /// <summary>The resident set size now (<c>VmRSS</c>), in bytes.</summary>
    public static long ResidentBytes() => Read("VmRSS:");

    /// <summary>
    /// The page faults this process has taken so far that the kernel served without reading a file (<c>minflt</c> in
    /// <c>/proc/self/stat</c>): mostly fresh memory touched for the first time; 0 where there is none.
    /// </summary>
    public static long MinorFaults()
    {
        if (!File.Exists("/proc/self/stat")) return 0;
        string stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // after "pid (name) ": state, ppid, …, minflt is the 8th
        return long.Parse(fields[7], CultureInfo.InvariantCulture);
    }

    private static long Read(string key)
    {
        if (!File.Exists("/proc/self/status")) return 0;
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    }
}
