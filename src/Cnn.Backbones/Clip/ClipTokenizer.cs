using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Cnn.Backbones.Clip;

/// <summary>
/// CLIP's byte-level byte-pair tokenizer (OpenAI CLIP's and OpenCLIP's <c>SimpleTokenizer</c> with <c>clean='lower'</c>), with
/// the 49,408-entry vocabulary built from the shipped merge list <c>bpe_simple_vocab_16e6.txt.gz</c> (MIT, see NOTICE.txt).
/// </summary>
/// <remarks>
/// <para><b>Text cleaning.</b> Each text is NFC-normalised, HTML-unescaped twice, stripped, its whitespace runs collapsed to one
/// space, and lower-cased; it is then split into words (letters runs, single digits, runs of other non-space characters, and the
/// English contractions <c>'s 't 're 've 'm 'll 'd</c>), each word's UTF-8 bytes are mapped to printable characters and merged by
/// the ranked pairs of the merge list, the last symbol of a word carrying the end-of-word mark <c>&lt;/w&gt;</c>.</para>
/// <para><b>What differs from Python.</b> OpenCLIP runs <c>ftfy.fix_text</c> first, which also repairs mojibake (UTF-8 read
/// as Latin-1), curly quotes, ligatures, full-width characters and HTML entities without their semicolon; this tokenizer only
/// NFC-normalises. HTML unescaping uses .NET's <see cref="WebUtility.HtmlDecode(string)"/> (the HTML 4 named entities and numeric
/// references; Python's <c>html.unescape</c> knows all HTML 5 names). Lower-casing is .NET's invariant one (Python's
/// <c>str.lower</c> differs on a few letters, e.g. a final Greek sigma). On ASCII prompts with the common entities the ids are
/// OpenCLIP's, id for id (tested at test time against OpenCLIP).</para>
/// <para><b>Context.</b> <see cref="Tokenize"/> wraps each text in <see cref="StartOfText"/> and <see cref="EndOfText"/>, pads
/// with 0 to <see cref="ContextLength"/> (77) and truncates longer texts to 77 ids whose last is the end token, as OpenCLIP does;
/// the truncated rows are reported so callers can warn.</para>
/// <para>Thread-safe; <see cref="Default"/> is loaded once.</para>
/// </remarks>
public sealed class ClipTokenizer
{
    /// <summary>CLIP's context length: every tokenized text has this many ids.</summary>
    public const int DefaultContextLength = 77;

    private const string ResourceName = "Cnn.Backbones.Clip.bpe_simple_vocab_16e6.txt.gz";
    private const int MergeCount = 49152 - 256 - 2;
    private const string EndOfWord = "</w>";

    private static readonly Lazy<ClipTokenizer> DefaultInstance = new(() => new ClipTokenizer());

    private static readonly Regex Words = new(
        @"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Compiled);

    private readonly Dictionary<string, int> _encoder;
    private readonly Dictionary<(string, string), int> _ranks;
    private readonly string[] _byteSymbols;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    /// <summary>Loads the embedded vocabulary; use <see cref="Default"/> to share one instance.</summary>
    /// <param name="contextLength">Ids per text (77 for every CLIP model).</param>
    public ClipTokenizer(int contextLength = DefaultContextLength)
    {
        if (contextLength < 2) throw new ArgumentOutOfRangeException(nameof(contextLength), contextLength, "The context must hold at least the start and end tokens.");
        ContextLength = contextLength;
        _byteSymbols = ByteSymbols();
        var merges = ReadMerges();
        var vocabulary = new List<string>(49408);
        vocabulary.AddRange(OrderedByteSymbols());
        vocabulary.AddRange(OrderedByteSymbols().Select(s => s + EndOfWord));
        _ranks = new Dictionary<(string, string), int>(merges.Count);
        for (int i = 0; i < merges.Count; i++)
        {
            vocabulary.Add(merges[i].Item1 + merges[i].Item2);
            _ranks[merges[i]] = i;
        }
        vocabulary.Add("<start_of_text>");
        vocabulary.Add("<end_of_text>");
        _encoder = new Dictionary<string, int>(vocabulary.Count, StringComparer.Ordinal);
        for (int i = 0; i < vocabulary.Count; i++) _encoder[vocabulary[i]] = i;
        StartOfText = _encoder["<start_of_text>"];
        EndOfText = _encoder["<end_of_text>"];
        _cache["<start_of_text>"] = [StartOfText];
        _cache["<end_of_text>"] = [EndOfText];
    }

    /// <summary>The shared tokenizer with CLIP's context length 77.</summary>
    public static ClipTokenizer Default => DefaultInstance.Value;

    /// <summary>Ids per tokenized text.</summary>
    public int ContextLength { get; }

    /// <summary>Vocabulary size (49,408).</summary>
    public int VocabularySize => _encoder.Count;

    /// <summary>Id of <c>&lt;start_of_text&gt;</c> (49,406).</summary>
    public int StartOfText { get; }

    /// <summary>Id of <c>&lt;end_of_text&gt;</c> (49,407); the text tower pools at its position.</summary>
    public int EndOfText { get; }

    /// <summary>The text as CLIP cleans it before splitting: NFC, HTML-unescaped twice, whitespace collapsed, lower-cased.</summary>
    /// <param name="text">Raw text.</param>
    public static string Clean(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = text.Normalize(NormalizationForm.FormC);
        s = WebUtility.HtmlDecode(WebUtility.HtmlDecode(s));
        var builder = new StringBuilder(s.Length);
        bool pendingSpace = false;
        foreach (char c in s)
        {
            if (IsPythonSpace(c))
            {
                pendingSpace = builder.Length > 0;
                continue;
            }
            if (pendingSpace) builder.Append(' ');
            pendingSpace = false;
            builder.Append(c);
        }
        return builder.ToString().ToLowerInvariant();
    }

    /// <summary>The byte-pair ids of <paramref name="text"/>, without start and end tokens or padding.</summary>
    /// <param name="text">Raw text.</param>
    public IReadOnlyList<int> Encode(string text)
    {
        var ids = new List<int>();
        foreach (Match word in Words.Matches(Clean(text)))
            ids.AddRange(EncodeWord(word.Value));
        return ids;
    }

    /// <summary>
    /// Tokenizes <paramref name="texts"/> into a [texts, <see cref="ContextLength"/>] matrix of ids: start token, the text's ids,
    /// end token, zero padding. A text longer than the context is cut to <see cref="ContextLength"/> ids whose last is the end
    /// token (OpenCLIP's rule); its index is in <see cref="ClipTokens.Truncated"/>.
    /// </summary>
    /// <param name="texts">The texts.</param>
    public ClipTokens Tokenize(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var ids = new long[texts.Count * (long)ContextLength];
        var truncated = new List<int>();
        for (int t = 0; t < texts.Count; t++)
        {
            var encoded = Encode(texts[t] ?? throw new ArgumentException($"Text {t} is null.", nameof(texts)));
            int length = encoded.Count + 2;
            long row = (long)t * ContextLength;
            ids[row] = StartOfText;
            if (length > ContextLength)
            {
                truncated.Add(t);
                for (int i = 0; i < ContextLength - 2; i++) ids[row + 1 + i] = encoded[i];
                ids[row + ContextLength - 1] = EndOfText;
            }
            else
            {
                for (int i = 0; i < encoded.Count; i++) ids[row + 1 + i] = encoded[i];
                ids[row + encoded.Count + 1] = EndOfText;
            }
        }
        return new ClipTokens(ids, texts.Count, ContextLength, truncated);
    }

    /// <summary>Turns ids back into text (end-of-word marks become spaces; special tokens are kept as their names).</summary>
    /// <param name="ids">Ids; padding zeros should be removed first.</param>
    public string Decode(IEnumerable<long> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var decoder = DecoderTable();
        var byteOf = new Dictionary<char, byte>();
        for (int b = 0; b < 256; b++) byteOf[_byteSymbols[b][0]] = (byte)b;
        var bytes = new List<byte>();
        foreach (long id in ids)
        {
            string symbol = decoder[(int)id];
            if (id == StartOfText || id == EndOfText)
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(symbol));
                continue;
            }
            bool endOfWord = symbol.EndsWith(EndOfWord, StringComparison.Ordinal);
            if (endOfWord) symbol = symbol[..^EndOfWord.Length];
            foreach (char c in symbol) bytes.Add(byteOf[c]);
            if (endOfWord) bytes.Add((byte)' ');
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private string[]? _decoder;

    private string[] DecoderTable()
    {
        if (_decoder is { } ready) return ready;
        var table = new string[_encoder.Count];
        foreach (var (symbol, id) in _encoder) table[id] = symbol;
        return _decoder = table;
    }

    private int[] EncodeWord(string word)
    {
        if (_cache.TryGetValue(word, out var cached)) return cached;
        var bytes = Encoding.UTF8.GetBytes(word);
        var symbols = new List<string>(bytes.Length);
        foreach (byte b in bytes) symbols.Add(_byteSymbols[b]);
        symbols[^1] += EndOfWord;
        while (symbols.Count > 1)
        {
            int bestRank = int.MaxValue;
            (string, string) best = default;
            for (int i = 0; i < symbols.Count - 1; i++)
            {
                if (_ranks.TryGetValue((symbols[i], symbols[i + 1]), out int rank) && rank < bestRank)
                {
                    bestRank = rank;
                    best = (symbols[i], symbols[i + 1]);
                }
            }
            if (bestRank == int.MaxValue) break;
            var merged = new List<string>(symbols.Count);
            for (int i = 0; i < symbols.Count; i++)
            {
                if (i < symbols.Count - 1 && symbols[i] == best.Item1 && symbols[i + 1] == best.Item2)
                {
                    merged.Add(best.Item1 + best.Item2);
                    i++;
                }
                else
                {
                    merged.Add(symbols[i]);
                }
            }
            symbols = merged;
        }
        var ids = symbols.Select(s => _encoder[s]).ToArray();
        if (_cache.Count < 100_000) _cache[word] = ids;
        return ids;
    }

    // Python's str.isspace (which str.split and str.strip use): Unicode whitespace plus the separators U+001C..U+001F.
    private static bool IsPythonSpace(char c) => char.IsWhiteSpace(c) || (c >= '\u001c' && c <= '\u001f');

    // The printable bytes keep their own character; the others (controls, space, soft hyphen...) take 256 + n in byte order.
    private static bool IsPrintableByte(int b) => b is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';

    private static string[] ByteSymbols()
    {
        var symbols = new string[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
            symbols[b] = IsPrintableByte(b) ? ((char)b).ToString() : ((char)(256 + n++)).ToString();
        return symbols;
    }

    // The vocabulary's first 256 entries: the printable bytes' symbols in byte order, then the others' in byte order.
    private static IEnumerable<string> OrderedByteSymbols()
    {
        var symbols = ByteSymbols();
        return Enumerable.Range(0, 256).Where(IsPrintableByte).Concat(Enumerable.Range(0, 256).Where(b => !IsPrintableByte(b))).Select(b => symbols[b]);
    }

    private static List<(string, string)> ReadMerges()
    {
        using var stream = typeof(ClipTokenizer).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The CLIP vocabulary resource '{ResourceName}' is missing from {typeof(ClipTokenizer).Assembly.GetName().Name}.");
        using var gzip = new GZipStream(stream, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, Encoding.UTF8);
        reader.ReadLine(); // "#version: 0.2"
        var merges = new List<(string, string)>(MergeCount);
        while (merges.Count < MergeCount && reader.ReadLine() is { } line)
        {
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0) throw new InvalidDataException($"CLIP vocabulary line {merges.Count + 2} is not a merge pair: '{line}'.");
            merges.Add((line[..space], line[(space + 1)..]));
        }
        if (merges.Count != MergeCount)
            throw new InvalidDataException($"The CLIP vocabulary has {merges.Count} merges; {MergeCount} were expected.");
        return merges;
    }
}

/// <summary>Texts tokenized by <see cref="ClipTokenizer.Tokenize"/>.</summary>
/// <param name="Ids">Row-major [Count, ContextLength] ids.</param>
/// <param name="Count">Number of texts.</param>
/// <param name="ContextLength">Ids per text.</param>
/// <param name="Truncated">Indices of the texts that were cut to the context length.</param>
public sealed record ClipTokens(long[] Ids, int Count, int ContextLength, IReadOnlyList<int> Truncated)
{
    /// <summary>The ids as an int64 tensor [Count, ContextLength] on the CPU.</summary>
    public Tensor ToTensor() => tensor(Ids, [Count, ContextLength], ScalarType.Int64);

    /// <summary>The ids of text <paramref name="index"/>.</summary>
    /// <param name="index">Text index.</param>
    public ReadOnlySpan<long> Row(int index) => Ids.AsSpan(index * ContextLength, ContextLength);
}
