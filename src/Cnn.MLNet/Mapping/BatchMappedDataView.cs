using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Mapping;

/// <summary>Builds the output schema of a <see cref="IBatchMapping"/>: the input columns, then the added ones.</summary>
internal static class BatchMappedSchema
{
    public static DataViewSchema Create(DataViewSchema input, IBatchMapping mapping)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        foreach (var column in mapping.OutputColumns)
            builder.AddColumn(column.Name, column.Type, column.Annotations);
        return builder.ToSchema();
    }
}

/// <summary>
/// A lazy data view that adds a <see cref="IBatchMapping"/>'s columns to its input. Rows are mapped in batches: a second
/// cursor over the input reads the image column ahead, one forward pass serves a whole batch, and while it runs the next
/// batch is read and prepared (<see cref="IBatchMapping.Prepare"/>: decoded and preprocessed) on a background task.
/// </summary>
internal sealed class BatchMappedDataView : IDataView
{
    private readonly IDataView _input;
    private readonly IBatchMapping _mapping;

    public BatchMappedDataView(IDataView input, IBatchMapping mapping)
    {
        _input = input;
        _mapping = mapping;
        mapping.CheckInput(input.Schema);
        Schema = BatchMappedSchema.Create(input.Schema, mapping);
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        int inputCount = _input.Schema.Count;
        bool anyOutput = needed.Any(i => i >= inputCount);
        var inputNeeded = _input.Schema.Where(c => needed.Contains(c.Index)).ToList();
        return new Cursor(this, _input.GetRowCursor(inputNeeded), needed, anyOutput);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly BatchMappedDataView _view;
        private readonly DataViewRowCursor _main;
        private readonly HashSet<int> _active;
        private readonly int _inputCount;
        private readonly float[][] _outputs;
        private DataViewRowCursor? _ahead;
        private Func<int, Cnn.MLNet.Data.ImageSample>? _readAhead;
        private long _aheadRow = -1;
        private long _row = -1;
        private long _batchStart;
        private int _batchCount;
        private Task<IDisposable?>? _next; // the batch after the current one, being prepared
        private List<Cnn.MLNet.Data.ImageSample>? _nextImages;
        private long _nextStart;
        private int _nextCount;

        public Cursor(BatchMappedDataView view, DataViewRowCursor main, HashSet<int> active, bool anyOutput)
        {
            _view = view;
            _main = main;
            _active = active;
            _inputCount = view._input.Schema.Count;
            int batch = view._mapping.BatchSize;
            _outputs = view._mapping.OutputColumns.Select(c => new float[batch * c.Width]).ToArray();
            if (anyOutput)
            {
                var imageColumn = ImageColumns.Find(view._input.Schema, view._mapping.InputColumnName);
                _ahead = view._input.GetRowCursor(new[] { imageColumn });
                _readAhead = ImageColumns.CreateReader(_ahead, imageColumn);
            }
        }

        public override DataViewSchema Schema => _view.Schema;

        public override long Position => _row;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (!_main.MoveNext()) return false;
            _row++;
            return true;
        }

        public override bool IsColumnActive(DataViewSchema.Column column)
            => column.Index < _inputCount ? _main.IsColumnActive(_view._input.Schema[column.Index]) : _active.Contains(column.Index);

        public override ValueGetter<DataViewRowId> GetIdGetter() => _main.GetIdGetter();

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _inputCount)
                return _main.GetGetter<TValue>(_view._input.Schema[column.Index]);
            int output = column.Index - _inputCount;
            var spec = _view._mapping.OutputColumns[output];
            if (!_active.Contains(column.Index))
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was created.");
            return OutputGetters.Create<TValue>(spec, () =>
            {
                EnsureBatch();
                return (_outputs[output], (int)(_row - _batchStart));
            });
        }

        private void EnsureBatch()
        {
            if (_row < 0)
                throw new InvalidOperationException("The cursor is not on a row: call MoveNext first.");
            if (_row >= _batchStart && _row < _batchStart + _batchCount)
                return;
            List<Cnn.MLNet.Data.ImageSample> images;
            long start;
            IDisposable? prepared = null;
            if (_next is not null && _row < _nextStart + _nextCount)
            {
                // The batch read and prepared while the previous one was mapped holds this row.
                (images, start) = (_nextImages!, _nextStart);
                var pending = _next;
                _next = null;
                prepared = pending.GetAwaiter().GetResult();
            }
            else
            {
                DiscardNext();
                // Skip rows whose outputs were never asked for, then read one batch starting at the current row.
                while (_aheadRow < _row - 1)
                {
                    if (!_ahead!.MoveNext()) throw new InvalidOperationException("The input data ended early while reading ahead.");
                    _aheadRow++;
                }
                images = ReadBatch();
                start = _row;
            }
            try
            {
                _batchStart = start;
                _batchCount = images.Count;
                if (_batchCount == 0)
                    throw new InvalidOperationException("The input data ended early while reading ahead.");
                if (_batchCount == _view._mapping.BatchSize) PrepareNext(start + _batchCount);
                _view._mapping.Map(images, prepared, _outputs);
            }
            finally
            {
                prepared?.Dispose();
            }
        }

        private List<Cnn.MLNet.Data.ImageSample> ReadBatch()
        {
            var images = new List<Cnn.MLNet.Data.ImageSample>(_view._mapping.BatchSize);
            while (images.Count < _view._mapping.BatchSize && _ahead!.MoveNext())
            {
                _aheadRow++;
                images.Add(_readAhead!(0));
            }
            return images;
        }

        /// <summary>
        /// Reads the batch that starts at row <paramref name="start"/> (here: the input cursor is not thread-safe) and prepares it
        /// on a background task while the current batch is mapped.
        /// </summary>
        private void PrepareNext(long start)
        {
            List<Cnn.MLNet.Data.ImageSample> images;
            try
            {
                images = ReadBatch();
            }
            catch (Exception ex)
            {
                // A row of the next batch cannot be read: its rows report that when asked for, as they would without reading ahead.
                (_nextImages, _nextStart, _nextCount) = ([], start, _view._mapping.BatchSize);
                _next = Task.FromException<IDisposable?>(ex);
                return;
            }
            if (images.Count == 0) return;
            var mapping = _view._mapping;
            (_nextImages, _nextStart, _nextCount) = (images, start, images.Count);
            _next = Task.Run(() => mapping.Prepare(images));
        }

        /// <summary>Drops a batch prepared ahead that no row asked for; its error, if it failed, no longer matters.</summary>
        private void DiscardNext()
        {
            if (_next is null) return;
            try { _next.GetAwaiter().GetResult()?.Dispose(); }
            catch (Exception) { /* abandoned */ }
            _next = null;
            _nextImages = null;
            _nextCount = 0;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                DiscardNext();
                _main.Dispose();
                _ahead?.Dispose();
                _ahead = null;
            }
            base.Dispose(disposing);
        }
    }
}

/// <summary>Getters over a batch's float outputs, typed as the column requires.</summary>
internal static class OutputGetters
{
    /// <summary>
    /// Creates a getter for <paramref name="spec"/>; <paramref name="current"/> returns the batch buffer and the row's index in it.
    /// </summary>
    public static ValueGetter<TValue> Create<TValue>(OutputColumn spec, Func<(float[] Buffer, int Row)> current)
    {
        int width = spec.Width;
        if (spec.Type is KeyDataViewType)
        {
            if (typeof(TValue) != typeof(uint))
                throw new InvalidOperationException($"Column '{spec.Name}' is a key column (UInt32); it was read as {typeof(TValue).Name}.");
            ValueGetter<uint> keyGetter = (ref uint value) =>
            {
                var (buffer, row) = current();
                value = (uint)buffer[row];
            };
            return (ValueGetter<TValue>)(Delegate)keyGetter;
        }
        if (typeof(TValue) != typeof(VBuffer<float>))
            throw new InvalidOperationException($"Column '{spec.Name}' is a vector of Single; it was read as {typeof(TValue).Name}.");
        ValueGetter<VBuffer<float>> vectorGetter = (ref VBuffer<float> value) =>
        {
            var (buffer, row) = current();
            var editor = VBufferEditor.Create(ref value, width);
            buffer.AsSpan(row * width, width).CopyTo(editor.Values);
            value = editor.Commit();
        };
        return (ValueGetter<TValue>)(Delegate)vectorGetter;
    }
}
