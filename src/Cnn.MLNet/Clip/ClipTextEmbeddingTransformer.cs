using System.IO.Compression;
using System.Text.Json;
using Cnn.MLNet.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Clip;

/// <summary>
/// Adds CLIP text embeddings (a float vector of the model's embedding width, L2-normalised unless turned off) to data with a
/// text column, e.g. to search images by text with the image embeddings. Texts longer than 77 tokens are truncated (with a
/// warning through <see cref="ClipModelOptions.Warn"/>), as OpenCLIP does. Computed lazily, one row at a time.
/// </summary>
public sealed class ClipTextEmbeddingTransformer : ITransformer, IPersistentTransformer, IDisposable
{
    internal const string Kind = "clip-text-embeddings";

    internal ClipTextEmbeddingTransformer(ClipNetwork network, string textColumn, string outputColumn, bool normalize, Action<string>? warn)
    {
        Network = network;
        InputColumnName = textColumn;
        OutputColumnName = outputColumn;
        Normalize = normalize;
        Warn = warn;
    }

    internal ClipNetwork Network { get; }

    internal Action<string>? Warn { get; }

    /// <summary>The text column.</summary>
    public string InputColumnName { get; }

    /// <summary>The embedding column.</summary>
    public string OutputColumnName { get; }

    /// <summary>Whether the embeddings are L2-normalised.</summary>
    public bool Normalize { get; }

    /// <summary>Embedding width.</summary>
    public int EmbeddingSize => Network.Model.Config.EmbedDim;

    /// <inheritdoc/>
    public bool IsRowToRowMapper => false;

    /// <summary>Checks that the text column exists and is text; throws an actionable error otherwise.</summary>
    internal static DataViewSchema.Column FindText(DataViewSchema schema, string name)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Text column '{name}' is not in the data; its columns are {string.Join(", ", schema.Select(c => c.Name))}.");
        if (column.Type is not TextDataViewType)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Column '{name}' has type {column.Type}; CLIP text embeddings need a text column.");
        return column;
    }

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        FindText(inputSchema, InputColumnName);
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema); // same indices as the input; a column of the output's name becomes hidden
        builder.AddColumn(OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, EmbeddingSize));
        return builder.ToSchema();
    }

    /// <summary>Not supported: the text embeddings are computed by <see cref="Transform"/>.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) =>
        throw new NotSupportedException("CLIP text embeddings have no row-to-row mapper; use Transform on an IDataView.");

    /// <inheritdoc/>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        FindText(input.Schema, InputColumnName);
        return new TextEmbeddingDataView(this, input);
    }

    /// <summary>The embedding of one text.</summary>
    internal float[] Embed(string text) => Network.EncodeTexts([text], Normalize, Warn);

    string IPersistentTransformer.StageKind => Kind;

    void IPersistentTransformer.Save(ZipArchive archive, string prefix)
    {
        Network.Save(archive, prefix);
        using var stream = archive.CreateEntry(prefix + "clip-text.json").Open();
        JsonSerializer.Serialize(stream, new Stored(Network.ModelName, InputColumnName, OutputColumnName, Normalize));
    }

    /// <summary>Not supported (ML.NET 5 cannot load components from other assemblies): use <see cref="CnnPipelineFile.Save"/>.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        "A pipeline with a CLIP stage cannot be saved with mlContext.Model.Save; use Cnn.MLNet.Persistence.CnnPipelineFile.Save.");

    internal static ClipTextEmbeddingTransformer Load(ZipArchive archive, string prefix)
    {
        var entry = archive.GetEntry(prefix + "clip-text.json") ?? throw new InvalidDataException($"Model file: '{prefix}clip-text.json' is missing.");
        Stored stored;
        using (var stream = entry.Open())
            stored = JsonSerializer.Deserialize<Stored>(stream) ?? throw new InvalidDataException("Model file: empty CLIP embedding description.");
        var network = ClipZeroShotTransformer.ClipNetworkLoad(archive, prefix, stored.ModelName);
        return new ClipTextEmbeddingTransformer(network, stored.TextColumn, stored.OutputColumn, stored.Normalize, null);
    }

    /// <summary>Releases the model's native memory.</summary>
    public void Dispose() => Network.Dispose();

    private sealed record Stored(string ModelName, string TextColumn, string OutputColumn, bool Normalize);

    private sealed class TextEmbeddingDataView : IDataView
    {
        private readonly ClipTextEmbeddingTransformer _owner;
        private readonly IDataView _input;

        public TextEmbeddingDataView(ClipTextEmbeddingTransformer owner, IDataView input)
        {
            _owner = owner;
            _input = input;
            Schema = owner.GetOutputSchema(input.Schema);
        }

        public bool CanShuffle => _input.CanShuffle;

        public DataViewSchema Schema { get; }

        public long? GetRowCount() => _input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            var needed = columnsNeeded.ToList();
            int output = _input.Schema.Count;
            bool wantOutput = needed.Any(c => c.Index == output);
            var text = _input.Schema[_owner.InputColumnName];
            var inputNeeded = needed.Where(c => c.Index != output).Select(c => _input.Schema[c.Index]).ToList();
            if (wantOutput && inputNeeded.All(c => c.Index != text.Index)) inputNeeded.Add(text);
            return new Cursor(this, _input.GetRowCursor(inputNeeded, rand), wantOutput);
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            [GetRowCursor(columnsNeeded, rand)];

        private sealed class Cursor(TextEmbeddingDataView view, DataViewRowCursor input, bool wantOutput) : DataViewRowCursor
        {
            private readonly ValueGetter<ReadOnlyMemory<char>>? _text = wantOutput ? input.GetGetter<ReadOnlyMemory<char>>(input.Schema[view._owner.InputColumnName]) : null;
            private long _embeddedPosition = -1;
            private float[] _embedding = [];

            public override DataViewSchema Schema => view.Schema;

            public override long Position => input.Position;

            public override long Batch => input.Batch;

            public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

            public override bool IsColumnActive(DataViewSchema.Column column) =>
                column.Index == input.Schema.Count ? wantOutput : input.IsColumnActive(input.Schema[column.Index]);

            public override bool MoveNext() => input.MoveNext();

            public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
            {
                if (column.Index != input.Schema.Count) return input.GetGetter<TValue>(input.Schema[column.Index]);
                ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> value) =>
                {
                    if (_embeddedPosition != input.Position)
                    {
                        ReadOnlyMemory<char> text = default;
                        _text!(ref text);
                        _embedding = view._owner.Embed(text.ToString());
                        _embeddedPosition = input.Position;
                    }
                    var editor = VBufferEditor.Create(ref value, _embedding.Length);
                    _embedding.AsSpan().CopyTo(editor.Values);
                    value = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)getter;
            }

            protected override void Dispose(bool disposing)
            {
                if (disposing) input.Dispose();
                base.Dispose(disposing);
            }
        }
    }
}
