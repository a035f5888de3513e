using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Mapping;

/// <summary>
/// Row-at-a-time view of a <see cref="IBatchMapping"/> (a batch of one), as <c>CreatePredictionEngine</c> needs.
/// Outputs are computed once per input row and cached until the row changes.
/// </summary>
internal sealed class BatchRowToRowMapper : IRowToRowMapper
{
    private readonly IBatchMapping _mapping;

    public BatchRowToRowMapper(DataViewSchema input, IBatchMapping mapping)
    {
        mapping.CheckInput(input);
        _mapping = mapping;
        InputSchema = input;
        OutputSchema = BatchMappedSchema.Create(input, mapping);
    }

    public DataViewSchema InputSchema { get; }

    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var needed = dependingColumns.ToList();
        var result = needed.Where(c => c.Index < InputSchema.Count).Select(c => InputSchema[c.Index]).ToList();
        if (needed.Any(c => c.Index >= InputSchema.Count))
        {
            var image = ImageColumns.Find(InputSchema, _mapping.InputColumnName);
            if (result.All(c => c.Index != image.Index)) result.Add(image);
        }
        return result;
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        => new Row(this, input, activeColumns.Select(c => c.Index).ToHashSet());

    private sealed class Row : DataViewRow
    {
        private readonly BatchRowToRowMapper _owner;
        private readonly DataViewRow _input;
        private readonly HashSet<int> _active;
        private readonly float[][] _outputs;
        private readonly Func<int, Cnn.MLNet.Data.ImageSample>? _read;
        private long _computedFor = -1;

        public Row(BatchRowToRowMapper owner, DataViewRow input, HashSet<int> active)
        {
            _owner = owner;
            _input = input;
            _active = active;
            _outputs = owner._mapping.OutputColumns.Select(c => new float[c.Width]).ToArray();
            if (active.Any(i => i >= owner.InputSchema.Count))
                _read = ImageColumns.CreateReader(input, ImageColumns.Find(owner.InputSchema, owner._mapping.InputColumnName));
        }

        public override DataViewSchema Schema => _owner.OutputSchema;

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column)
            => column.Index < _owner.InputSchema.Count ? _input.IsColumnActive(_owner.InputSchema[column.Index]) : _active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _owner.InputSchema.Count)
                return _input.GetGetter<TValue>(_owner.InputSchema[column.Index]);
            int output = column.Index - _owner.InputSchema.Count;
            return OutputGetters.Create<TValue>(_owner._mapping.OutputColumns[output], () =>
            {
                // A prediction engine reuses one input row object whose position may stay at -1, so recompute every call
                // unless the row has a real, unchanged position.
                if (_input.Position < 0 || _input.Position != _computedFor)
                {
                    _owner._mapping.Map(new[] { _read!(0) }, _outputs);
                    _computedFor = _input.Position;
                }
                return (_outputs[output], 0);
            });
        }
    }
}
