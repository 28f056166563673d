using Sora.Runtime;

namespace Sora.Tests.Text;

/// <summary>
/// Wraps a backend so that every <see cref="Allocate"/> returns NaN-filled memory: a model that reads an
/// element it never wrote (a missing zero fill, a short copy) then produces NaN and fails its test, even on
/// backends whose allocator happens to hand out zeros. Every op is forwarded unchanged.
/// </summary>
internal sealed class PoisoningBackend(IBackend inner) : IBackend
{
    public DeviceInfo Device => inner.Device;

    public Tensor Allocate(DType dtype, params int[] shape)
    {
        var t = inner.Allocate(dtype, shape);
        var nan = new float[t.ElementCount];
        Array.Fill(nan, float.NaN);
        using var host = Tensor.FromArray(nan, shape, dtype);
        inner.Copy(host, t);
        return t;
    }

    public Tensor ToDevice(Tensor host) => inner.ToDevice(host);
    public DeviceBytes Upload(ReadOnlyMemory<byte> bytes) => inner.Upload(bytes);
    public void Gemm(Tensor x, Weight w, Tensor? bias, Tensor y, GemmEpilogue epilogue = GemmEpilogue.None, Tensor? residual = null, Tensor? gate = null)
        => inner.Gemm(x, w, bias, y, epilogue, residual, gate);
    public void GemmGatedRows(Tensor x, Weight w, Tensor? bias, Tensor y, Tensor residual, Tensor gateBase, Tensor gate, ReadOnlySpan<int> rowSets)
        => inner.GemmGatedRows(x, w, bias, y, residual, gateBase, gate, rowSets);
    public void Conv3d(Tensor x, Weight w, Tensor? bias, Tensor y, Conv3dGeometry geometry, Tensor? timeCache = null)
        => inner.Conv3d(x, w, bias, y, geometry, timeCache);
    public void Dequantize(Weight w, Tensor y) => inner.Dequantize(w, y);
    public Tensor ToHost(Tensor tensor) => inner.ToHost(tensor);
    public void Copy(Tensor src, Tensor dst) => inner.Copy(src, dst);
    public MemoryStats Memory => inner.Memory;
    public void ResetPeakMemory() => inner.ResetPeakMemory();
    public long PooledBytes => inner.PooledBytes;
    public void TrimPool() => inner.TrimPool();
    public void Synchronize() => inner.Synchronize();
    public void Gemm(Tensor x, Tensor w, Tensor? bias, Tensor y, GemmEpilogue epilogue = GemmEpilogue.None, Tensor? residual = null, Tensor? gate = null)
        => inner.Gemm(x, w, bias, y, epilogue, residual, gate);
    public void Attention(Tensor q, Tensor k, Tensor v, Tensor o, AttentionOptions options) => inner.Attention(q, k, v, o, options);
    public void ApplyRope(Tensor x, Tensor cos, Tensor sin) => inner.ApplyRope(x, cos, sin);
    public void Conv3d(Tensor x, Tensor w, Tensor? bias, Tensor y, Conv3dGeometry geometry, Tensor? timeCache = null)
        => inner.Conv3d(x, w, bias, y, geometry, timeCache);
    public void LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps, Tensor y) => inner.LayerNorm(x, weight, bias, eps, y);
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y) => inner.RmsNorm(x, weight, eps, y);
    public void ChannelRmsNorm(Tensor x, Tensor gamma, Tensor? beta, Tensor y) => inner.ChannelRmsNorm(x, gamma, beta, y);
    public void AdaLnModulate(Tensor x, Tensor shift, Tensor scale, float eps, Tensor y) => inner.AdaLnModulate(x, shift, scale, eps, y);
    public void GatedResidual(Tensor x, Tensor y, Tensor gate) => inner.GatedResidual(x, y, gate);
    public void AdaLnModulateRows(Tensor x, Tensor shiftBase, Tensor shift, Tensor scaleBase, Tensor scale, ReadOnlySpan<int> rowSets, float eps, Tensor y)
        => inner.AdaLnModulateRows(x, shiftBase, shift, scaleBase, scale, rowSets, eps, y);
    public void GemmGatedRows(Tensor x, Tensor w, Tensor? bias, Tensor y, Tensor residual, Tensor gateBase, Tensor gate, ReadOnlySpan<int> rowSets)
        => inner.GemmGatedRows(x, w, bias, y, residual, gateBase, gate, rowSets);
    public void GeluTanh(Tensor x, Tensor y) => inner.GeluTanh(x, y);
    public void Silu(Tensor x, Tensor y) => inner.Silu(x, y);
    public void Add(Tensor a, Tensor b, Tensor y) => inner.Add(a, b, y);
    public void Mul(Tensor a, Tensor b, Tensor y) => inner.Mul(a, b, y);
    public void ScaleShift(Tensor x, float a, float b, Tensor y) => inner.ScaleShift(x, a, b, y);
    public void Clamp(Tensor x, float min, float max, Tensor y) => inner.Clamp(x, min, max, y);
    public void ChannelAffine(Tensor x, float[] scale, float[] shift, Tensor y) => inner.ChannelAffine(x, scale, shift, y);
    public void CfgCombine(Tensor uncond, Tensor cond, float guidance, Tensor y) => inner.CfgCombine(uncond, cond, guidance, y);
    public void Upsample2x(Tensor x, Tensor y) => inner.Upsample2x(x, y);
    public void TimestepEmbedding(float[] timesteps, int dim, bool flipSinToCos, float downscaleFreqShift, Tensor y)
        => inner.TimestepEmbedding(timesteps, dim, flipSinToCos, downscaleFreqShift, y);
    public void Embedding(int[] ids, Tensor table, Tensor y) => inner.Embedding(ids, table, y);
    public void Patchify(Tensor x, int pt, int ph, int pw, Tensor y) => inner.Patchify(x, pt, ph, pw, y);
    public void Unpatchify(Tensor x, int pt, int ph, int pw, Tensor y) => inner.Unpatchify(x, pt, ph, pw, y);
    public void EulerStep(Tensor x, Tensor v, float sigma, float sigmaNext) => inner.EulerStep(x, v, sigma, sigmaNext);
    public void LinearCombination(ReadOnlySpan<float> coefficients, ReadOnlySpan<Tensor> terms, Tensor y) => inner.LinearCombination(coefficients, terms, y);

    public void Dispose() => inner.Dispose();
}
