using Microsoft.ML.Runtime;

namespace Cnn.MLNet.Mapping;

/// <summary>
/// Finds the <see cref="IHostEnvironment"/> (the <c>MLContext</c>) behind an ML.NET catalog, so catalog-created components
/// log through it. Microsoft.ML 5 exposes it only through an internal interface; without it, components log nothing.
/// </summary>
internal static class CatalogEnvironment
{
    public static IHostEnvironment? Of(object catalog)
    {
        var contract = catalog.GetType().GetInterfaces().FirstOrDefault(i => i.FullName == "Microsoft.ML.Data.IInternalCatalog");
        return contract?.GetProperty("Environment")?.GetValue(catalog) as IHostEnvironment;
    }
}
