namespace Cnn.MLNet.Data;

/// <summary>A labelled image collection: samples plus class names (index = label).</summary>
public class ImageDataset
{
    /// <summary>Creates a dataset; every label must index <paramref name="classNames"/>.</summary>
    /// <exception cref="ArgumentException">A label is out of range or there are no class names.</exception>
    public ImageDataset(IReadOnlyList<ImageSample> samples, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(classNames);
        if (classNames.Count == 0) throw new ArgumentException("A dataset needs at least one class name.", nameof(classNames));
        for (int i = 0; i < samples.Count; i++)
            if (samples[i].Label >= classNames.Count)
                throw new ArgumentException($"Sample '{samples[i].Name}' has label {samples[i].Label} but there are only {classNames.Count} classes.", nameof(samples));
        Samples = samples;
        ClassNames = classNames;
    }

    /// <summary>The samples, in a stable order.</summary>
    public IReadOnlyList<ImageSample> Samples { get; }

    /// <summary>Class names; a sample's label indexes this list.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Number of samples.</summary>
    public int Count => Samples.Count;

    /// <summary>Number of samples of each class (index = label).</summary>
    public int[] CountPerClass()
    {
        var counts = new int[ClassNames.Count];
        foreach (var sample in Samples) counts[sample.Label]++;
        return counts;
    }

    /// <summary>
    /// The first <paramref name="perClass"/> samples of each class (classes in the order they first appear, each class's samples
    /// in dataset order): a class-balanced subset, e.g. for quick experiments on Fashion-MNIST.
    /// </summary>
    /// <param name="perClass">Samples kept per class (fewer where a class has fewer).</param>
    public ImageDataset TakePerClass(int perClass)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(perClass);
        return new ImageDataset(Samples.GroupBy(s => s.Label).SelectMany(g => g.Take(perClass)).ToList(), ClassNames);
    }

    /// <summary>
    /// Stratified, seeded train/validation split: within each class the samples are shuffled with <paramref name="seed"/> and
    /// <c>round(n · validationFraction)</c> of them go to validation, at least one when the class has two or more samples and
    /// never all of them. Both parts keep the original sample order. The same seed always gives the same split.
    /// </summary>
    /// <param name="validationFraction">Fraction of each class for validation, in (0, 1).</param>
    /// <param name="seed">Shuffle seed.</param>
    /// <exception cref="ArgumentOutOfRangeException">The fraction is not in (0, 1).</exception>
    public (ImageDataset Train, ImageDataset Validation) Split(double validationFraction, int seed)
    {
        var isValidation = StratifiedSplit.ValidationMask(Samples.Select(s => s.Label).ToArray(), validationFraction, seed);
        var train = new List<ImageSample>(Samples.Count);
        var validation = new List<ImageSample>();
        for (int i = 0; i < Samples.Count; i++) (isValidation[i] ? validation : train).Add(Samples[i]);
        return (new ImageDataset(train, ClassNames), new ImageDataset(validation, ClassNames));
    }
}
