using Cnn.Backbones.Models;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Networks;
using Cnn.MLNet;
using Microsoft.ML.Data;
using Microsoft.ML;

namespace Cnn.MLNet.Features;

/// <summary>
/// Creates a <see cref="CnnFeatureTransformer"/>: nothing is learned, <see cref="Fit"/> only builds the backbone and loads its
/// weights. Create it with <c>mlContext.Transforms.ExtractCnnFeatures(...)</c>.
/// </summary>
public sealed class CnnFeatureEstimator : IEstimator<CnnFeatureTransformer>
{
    private readonly Microsoft.ML.Runtime.IHostEnvironment? _environment;

    internal CnnFeatureEstimator(CnnFeatureOptions options, Microsoft.ML.Runtime.IHostEnvironment? environment = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ModelRegistry.Get(options.Architecture);
        options.Validate();
        Options = options;
        _environment = environment;
    }

    /// <summary>The extractor's options.</summary>
    public CnnFeatureOptions Options { get; }

    /// <summary>Checks the image column and describes the output: the input plus the feature column(s).</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        SchemaShapes.RequireImageColumn(inputSchema, Options.ImageColumnName);
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(Options.OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, 1));
        foreach (int stage in Options.StageIndices ?? Array.Empty<int>())
            builder.AddColumn($"{Options.OutputColumnName}.stage{stage}", new VectorDataViewType(NumberDataViewType.Single, 1));
        return SchemaShapes.Append(inputSchema, builder.ToSchema());
    }

    /// <summary>Builds the backbone with its weights; checks the input schema.</summary>
    public CnnFeatureTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ImageColumns.Find(input.Schema, Options.ImageColumnName);
        return Create(Options, _environment);
    }

    internal static CnnFeatureTransformer Create(CnnFeatureOptions o, Microsoft.ML.Runtime.IHostEnvironment? environment = null)
    {
        var network = NetworkBuilder.Build(o.ToNetworkSpec(), NetworkBuilder.ResolveDevice(o.Device));
        network.Log = environment;
        try
        {
            network.UseCompute(o.Precision, o.MemoryFormat, o.Engine);
            return new CnnFeatureTransformer(network, o.ImageColumnName, o.OutputColumnName, o.StageIndices ?? Array.Empty<int>(), o.BatchSize);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }
}
