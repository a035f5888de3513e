namespace Cnn.MLNet.Data;

/// <summary>The stratified, seeded train/validation split of <see cref="ImageDataset.Split"/>, over any list of group labels.</summary>
internal static class StratifiedSplit
{
    /// <summary>
    /// Which items go to validation: within each group (equal labels; groups taken in ascending label order) the items are
    /// shuffled with <paramref name="seed"/> and <c>round(n · validationFraction)</c> of them go to validation, at least one when
    /// the group has two or more items and never all of them. The same seed always gives the same split.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The fraction is not in (0, 1).</exception>
    public static bool[] ValidationMask(IReadOnlyList<int> labels, double validationFraction, int seed)
    {
        if (!(validationFraction > 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must be between 0 and 1 (exclusive).");
        var groups = new SortedDictionary<int, List<int>>();
        for (int i = 0; i < labels.Count; i++)
        {
            if (!groups.TryGetValue(labels[i], out var members)) groups[labels[i]] = members = [];
            members.Add(i);
        }
        var random = new Random(seed);
        var isValidation = new bool[labels.Count];
        foreach (var members in groups.Values)
        {
            int n = members.Count;
            if (n < 2) continue;
            int take = (int)Math.Round(n * validationFraction, MidpointRounding.AwayFromZero);
            take = Math.Clamp(take, 1, n - 1);
            var shuffled = members.ToArray();
            random.Shuffle(shuffled);
            for (int k = 0; k < take; k++) isValidation[shuffled[k]] = true;
        }
        return isValidation;
    }
}
