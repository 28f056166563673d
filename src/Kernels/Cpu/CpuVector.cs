using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Sora.Kernels.Cpu;

/// <summary>Vectorised primitives over raw float rows (TensorPrimitives underneath).</summary>
internal static unsafe class CpuVector
{
    private const int Chunk = 512;

    private static Span<float> S(float* p, int n) => new(p, n);
    private static ReadOnlySpan<float> R(float* p, int n) => new(p, n);

    public static void AddInPlace(float* y, float* b, int n) => TensorPrimitives.Add(R(y, n), R(b, n), S(y, n));

    public static void Add(float* a, float* b, float* y, int n) => TensorPrimitives.Add(R(a, n), R(b, n), S(y, n));

    public static void Mul(float* a, float* b, float* y, int n) => TensorPrimitives.Multiply(R(a, n), R(b, n), S(y, n));

    /// <summary>y = a·b + c</summary>
    public static void MulAdd(float* a, float* b, float* c, float* y, int n) => TensorPrimitives.FusedMultiplyAdd(R(a, n), R(b, n), R(c, n), S(y, n));

    /// <summary>y = x·a + b (scalars)</summary>
    public static void ScaleShift(float* x, float a, float b, float* y, int n)
    {
        int i = 0;
        var va = Vector512.Create(a);
        var vb = Vector512.Create(b);
        for (; i + 16 <= n; i += 16) Vector512.FusedMultiplyAdd(Vector512.Load(x + i), va, vb).Store(y + i);
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd(x[i], a, b);
    }

    /// <summary>gelu_tanh(x) = x·sigmoid(2u) with u = √(2/π)(x + 0.044715x³), since 0.5(1 + tanh u) = sigmoid(2u).</summary>
    public static void GeluTanh(float* x, float* y, int n)
    {
        const float c = 0.7978845608028654f; // sqrt(2/pi)
        float* t = stackalloc float[Chunk];
        for (int i = 0; i < n; i += Chunk)
        {
            int len = Math.Min(Chunk, n - i);
            var tx = R(x + i, len);
            var ts = S(t, len);
            TensorPrimitives.Multiply(tx, tx, ts);                     // x²
            ScaleShift(t, 2 * c * 0.044715f, 2 * c, t, len);             // 2c(1 + 0.044715x²)
            TensorPrimitives.Multiply(ts, tx, ts);                     // 2u
            TensorPrimitives.Sigmoid(ts, ts);
            TensorPrimitives.Multiply(ts, tx, S(y + i, len));
        }
    }

    public static void Silu(float* x, float* y, int n)
    {
        float* t = stackalloc float[Chunk];
        for (int i = 0; i < n; i += Chunk)
        {
            int len = Math.Min(Chunk, n - i);
            TensorPrimitives.Sigmoid(R(x + i, len), S(t, len));
            TensorPrimitives.Multiply(R(t, len), R(x + i, len), S(y + i, len));
        }
    }

    public static float Dot(float* a, float* b, int n) => TensorPrimitives.Dot(R(a, n), R(b, n));
}
