using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Cnn.Tests.Shared;

/// <summary>One request the loopback server received.</summary>
internal sealed record ServerRequest(string Method, string Target, IReadOnlyDictionary<string, string> Headers)
{
    public string Path => Target.StartsWith('/') ? Target.Split('?')[0] : new Uri(Target).AbsolutePath;

    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;

    /// <summary>The start of a <c>Range: bytes=N-</c> header, or null.</summary>
    public long? RangeStart => Header("Range") is { } range && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-')
        ? long.Parse(range[6..^1], CultureInfo.InvariantCulture) : null;
}

/// <summary>What the loopback server answers.</summary>
internal sealed class ServerResponse
{
    public int Status { get; init; } = 200;
    public byte[] Body { get; init; } = [];
    public Dictionary<string, string> Headers { get; init; } = [];

    /// <summary>Close the connection after this many body bytes (a connection cut mid-file), announcing the full length.</summary>
    public int? CutAfter { get; init; }

    /// <summary>Pause between chunks of <see cref="ChunkSize"/> bytes (a slow server).</summary>
    public TimeSpan ChunkDelay { get; init; }

    public int ChunkSize { get; init; } = 16 * 1024;

    public static ServerResponse NotFound(string? errorCode = null) =>
        new() { Status = 404, Headers = errorCode is null ? [] : new() { ["X-Error-Code"] = errorCode } };

    public static ServerResponse Redirect(string location, int status = 302) => new() { Status = status, Headers = new() { ["Location"] = location } };

    /// <summary>A file, honouring <c>Range: bytes=N-</c> unless told to ignore it (then the whole file, 200).</summary>
    public static ServerResponse File(byte[] content, ServerRequest request, bool honourRange = true, int? cutAfter = null, TimeSpan chunkDelay = default)
    {
        if (honourRange && request.RangeStart is { } start)
        {
            if (start >= content.Length)
                return new() { Status = 416, Headers = new() { ["Content-Range"] = $"bytes */{content.Length}" } };
            return new()
            {
                Status = 206,
                Body = content[(int)start..],
                Headers = new() { ["Content-Range"] = $"bytes {start}-{content.Length - 1}/{content.Length}", ["Accept-Ranges"] = "bytes" },
                CutAfter = cutAfter,
                ChunkDelay = chunkDelay,
            };
        }
        return new() { Body = content, CutAfter = cutAfter, ChunkDelay = chunkDelay };
    }
}

/// <summary>
/// A minimal HTTP/1.1 server on 127.0.0.1 (a random port) for download tests: one request per connection, answers from a
/// handler, records every request, and can cut a connection mid-body or send slowly.
/// </summary>
internal sealed class LoopbackServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<ServerRequest, ServerResponse> _handler;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public LoopbackServer(Func<ServerRequest, ServerResponse> handler)
    {
        _handler = handler;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _loop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    /// <summary>http://127.0.0.1:port/</summary>
    public Uri BaseUrl => new($"http://127.0.0.1:{Port}/");

    public Uri Url(string path) => new(BaseUrl, path.TrimStart('/'));

    public ConcurrentQueue<ServerRequest> Requests { get; } = new();

    public int Count(string method, string pathSuffix) => Requests.Count(r => r.Method == method && r.Path.EndsWith(pathSuffix, StringComparison.Ordinal));

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(socket));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        using (socket)
        {
            try
            {
                await using var stream = new NetworkStream(socket, ownsSocket: false);
                var request = await ReadRequestAsync(stream);
                if (request is null) return;
                Requests.Enqueue(request);
                var response = _handler(request);
                var head = new StringBuilder($"HTTP/1.1 {response.Status} {ReasonOf(response.Status)}\r\n");
                foreach (var (name, value) in response.Headers) head.Append($"{name}: {value}\r\n");
                if (!response.Headers.ContainsKey("Content-Length")) head.Append($"Content-Length: {response.Body.Length}\r\n");
                head.Append("Connection: close\r\n\r\n");
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), _stop.Token);
                if (request.Method != "HEAD")
                {
                    int limit = Math.Min(response.CutAfter ?? int.MaxValue, response.Body.Length);
                    for (int sent = 0; sent < limit;)
                    {
                        int n = Math.Min(response.ChunkSize, limit - sent);
                        await stream.WriteAsync(response.Body.AsMemory(sent, n), _stop.Token);
                        sent += n;
                        if (response.ChunkDelay > TimeSpan.Zero) await Task.Delay(response.ChunkDelay, _stop.Token);
                    }
                    if (response.CutAfter is not null)
                    {
                        socket.LingerState = new LingerOption(true, 0); // a reset, as a dropped connection looks
                        return;
                    }
                }
                await stream.FlushAsync(_stop.Token);
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The client went away (cancellation tests) or the server stops.
            }
        }
    }

    private static async Task<ServerRequest?> ReadRequestAsync(Stream stream)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (bytes.Count < 65536)
        {
            if (await stream.ReadAsync(one) == 0) return null;
            bytes.Add(one[0]);
            int n = bytes.Count;
            if (n >= 4 && bytes[n - 4] == '\r' && bytes[n - 3] == '\n' && bytes[n - 2] == '\r' && bytes[n - 1] == '\n') break;
        }
        string[] lines = Encoding.ASCII.GetString(bytes.ToArray()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        string[] first = lines[0].Split(' ');
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            if (colon > 0) headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        return new ServerRequest(first[0], first[1], headers);
    }

    private static string ReasonOf(int status) => status switch
    {
        200 => "OK", 206 => "Partial Content", 301 => "Moved Permanently", 302 => "Found", 307 => "Temporary Redirect",
        404 => "Not Found", 416 => "Range Not Satisfiable", 503 => "Service Unavailable", _ => "Status",
    };
}
