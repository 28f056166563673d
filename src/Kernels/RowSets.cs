using Sora.Runtime;

namespace Sora.Kernels;

/// <summary>Argument checks of the per-row modulation ops (<see cref="IBackend.AdaLnModulateRows"/>, <see cref="IBackend.GemmGatedRows(Tensor, Tensor, Tensor?, Tensor, Tensor, Tensor, Tensor, ReadOnlySpan{int})"/>).</summary>
internal static class RowSets
{
    /// <summary>The set count G of a per-set tensor [G, N]; anything else is an error naming it.</summary>
    public static int Count(Tensor perSet, string name, int width)
    {
        ArgumentNullException.ThrowIfNull(perSet, name);
        if (perSet.Rank != 2 || perSet.Dim(1) != width || perSet.Dim(0) < 1)
            throw new ArgumentException($"{name} must be [G≥1, {width}] (one row per modulation set), got {perSet.ShapeString}", name);
        return perSet.Dim(0);
    }

    /// <summary>rowSets must name one set in [0, G) for each of the <paramref name="rows"/> rows.</summary>
    public static void Check(ReadOnlySpan<int> rowSets, int rows, int sets)
    {
        if (rowSets.Length != rows)
            throw new ArgumentException($"rowSets has {rowSets.Length} entries, expected one per row ({rows})", nameof(rowSets));
        for (int r = 0; r < rowSets.Length; r++)
            if ((uint)rowSets[r] >= (uint)sets)
                throw new ArgumentOutOfRangeException(nameof(rowSets), rowSets[r], $"rowSets[{r}] = {rowSets[r]} is outside [0, {sets}) (the per-set tensors have {sets} rows)");
    }
}
