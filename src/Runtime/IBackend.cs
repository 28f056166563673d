namespace Sora.Runtime;

/// <summary>What a device is and how much memory it has.</summary>
public sealed record DeviceInfo(string Id, string Name, string Kind, long MemoryBytes);

/// <summary>Bytes of device memory in use now and at most since the last reset.</summary>
public sealed record MemoryStats(long CurrentBytes, long PeakBytes);

/// <summary>Fused tail of a GEMM: y = epilogue(x·Wᵀ + b).</summary>
public enum GemmEpilogue
{
    /// <summary>y = x·Wᵀ + b</summary>
    None,
    /// <summary>y = gelu_tanh(x·Wᵀ + b)</summary>
    GeluTanh,
    /// <summary>y = silu(x·Wᵀ + b)</summary>
    Silu,
    /// <summary>y = residual + (x·Wᵀ + b)</summary>
    AddResidual,
    /// <summary>y = residual + gate ⊙ (x·Wᵀ + b), gate a vector [N] broadcast over rows</summary>
    GatedResidual,
}

/// <summary>Geometry of a 3D convolution over one sample laid out [C, T, H, W].</summary>
/// <remarks>
/// Padding is given per side. Causal convolutions pad time on the left only (PadT0 = 2·p, PadT1 = 0);
/// the Wan downsample pads right and bottom only. When a time cache is given, the input is read as if the
/// cache's frames were concatenated in front of it, and they take the place of the last cache-length frames
/// of the left time padding (the rest stays zero).
/// </remarks>
public readonly record struct Conv3dGeometry(
    int KernelT, int KernelH, int KernelW,
    int StrideT = 1, int StrideH = 1, int StrideW = 1,
    int PadT0 = 0, int PadT1 = 0, int PadH0 = 0, int PadH1 = 0, int PadW0 = 0, int PadW1 = 0)
{
    /// <summary>Output frames; cache frames replace left time padding, so they add frames only beyond PadT0.</summary>
    public int OutT(int t, int cacheFrames = 0) => (t + Math.Max(PadT0, cacheFrames) + PadT1 - KernelT) / StrideT + 1;
    public int OutH(int h) => (h + PadH0 + PadH1 - KernelH) / StrideH + 1;
    public int OutW(int w) => (w + PadW0 + PadW1 - KernelW) / StrideW + 1;
}

/// <summary>
/// Options of <see cref="IBackend.Attention"/>. Sequences are packed: q is [Nq, H, D] holding B sequences
/// back to back, with <see cref="QueryOffsets"/> (B+1 cumulative starts, first 0, last Nq) and likewise
/// <see cref="KeyOffsets"/> for k and v; attention is block-diagonal (sequence i's queries see only sequence
/// i's keys). Null offsets mean one sequence.
/// </summary>
public sealed record AttentionOptions
{
    /// <summary>Multiplies q·k before softmax: 1/√D for Wan, 1 for T5.</summary>
    public required float Scale { get; init; }
    public int[]? QueryOffsets { get; init; }
    public int[]? KeyOffsets { get; init; }
    /// <summary>Per sequence, how many of its keys are real (the rest are padding, masked out). Null: all.</summary>
    public int[]? KeyValidLengths { get; init; }
    /// <summary>
    /// Additive relative-position bias, F32 [H, 2·L−1]: the score of query i and key j (positions inside their
    /// sequence) gets bias[h, (j − i) + L − 1]. L = <see cref="RelativeBiasCenter"/> + 1 bounds the sequence length.
    /// </summary>
    public Tensor? RelativeBias { get; init; }
    public int RelativeBiasCenter { get; init; }
}

/// <summary>
/// The one op interface of Sora.Native. Implemented by the managed CPU backend and by the ILGPU backend
/// (CUDA, OpenCL, ILGPU CPU accelerator). All tensors given to an op must live on this backend. Activations
/// are F32; weights (the W of Gemm, the table of Embedding, conv weights) may be F32, F16 or BF16 and are
/// converted inside the kernels; the <see cref="Weight"/> overloads also take fp8 and ggml-block weights, expanded
/// inside the kernels as well, and LoRA side paths. Outputs are written in full; an op never allocates its output.
/// Unless stated otherwise, tensors must be contiguous; out-of-place ops accept output == input.
/// </summary>
public interface IBackend : IDisposable
{
    DeviceInfo Device { get; }

    // ---- memory ------------------------------------------------------------------------------------

    /// <summary>A new contiguous tensor on this device (contents unspecified), from the backend's pool.</summary>
    Tensor Allocate(DType dtype, params int[] shape);

    /// <summary>Copies a host tensor to this device (a new owning tensor).</summary>
    Tensor ToDevice(Tensor host);

    /// <summary>Copies a tensor of this device to a new host tensor.</summary>
    Tensor ToHost(Tensor tensor);

    /// <summary>Copies src into dst (same shape; any strides; dtype converted).</summary>
    void Copy(Tensor src, Tensor dst);

    MemoryStats Memory { get; }
    void ResetPeakMemory();
    /// <summary>Bytes of freed buffers the backend keeps for reuse (not in <see cref="Memory"/>'s current bytes).</summary>
    long PooledBytes { get; }
    /// <summary>Gives the kept buffers back (to the OS or the driver): after a burst of work, before idling.</summary>
    void TrimPool();
    void Synchronize();

    // ---- linear algebra ----------------------------------------------------------------------------

    /// <summary>
    /// y[M,N] = epilogue(x[M,K]·w[N,K]ᵀ + bias[N]). residual [M,N] for AddResidual/GatedResidual (may be y
    /// itself), gate [N] for GatedResidual. x and y may have a row stride larger than their width.
    /// </summary>
    void Gemm(Tensor x, Tensor w, Tensor? bias, Tensor y, GemmEpilogue epilogue = GemmEpilogue.None, Tensor? residual = null, Tensor? gate = null);

    /// <summary>
    /// Flash attention. q [Nq, H, D], k and v [Nk, H, D], o [Nq, H, D]; q, k, v may have any row stride
    /// (views into a fused projection) but heads and head_dim must be dense. A query with no visible key
    /// gets zeros, never NaN.
    /// </summary>
    void Attention(Tensor q, Tensor k, Tensor v, Tensor o, AttentionOptions options);

    /// <summary>
    /// 3D rotary embedding in place on x [B·S, H, D] with interleaved pairs: (x[2i], x[2i+1]) of row r
    /// rotate by the angle whose cos and sin are cos[r mod S, i], sin[r mod S, i] (cos, sin: [S, D/2]).
    /// </summary>
    void ApplyRope(Tensor x, Tensor cos, Tensor sin);

    /// <summary>Causal / padded 3D convolution of one sample. x [Cin,T,H,W], w [Cout,Cin,kT,kH,kW], bias [Cout], y [Cout,T',H',W'], optional cache [Cin,Tc,H,W].</summary>
    void Conv3d(Tensor x, Tensor w, Tensor? bias, Tensor y, Conv3dGeometry geometry, Tensor? timeCache = null);

    // ---- weights of any storage kind (Weights.cs) ----------------------------------------------------
    // A Weight is dense (F32/F16/BF16: the tensor ops above), fp8 codes with a scale, ggml blocks, or any of them with
    // LoRA side paths. Stored values are expanded inside the kernel (while packing or per tile), never as a whole.
    // The default bodies serve backends that only forward dense ops (test decorators): dense weights go to the tensor
    // ops, LoRA to its side path, and other kinds are refused naming the format; real backends implement them all.

    /// <summary>Places encoded weight bytes (ggml blocks, as stored) on this device unchanged; the CPU backend pins them in place.</summary>
    DeviceBytes Upload(ReadOnlyMemory<byte> bytes) => throw new NotSupportedException($"{Device.Id} does not hold encoded weights");

    /// <summary><see cref="Gemm(Tensor, Tensor, Tensor?, Tensor, GemmEpilogue, Tensor?, Tensor?)"/> with W [N = w.Out, K = w.In] of any kind.</summary>
    void Gemm(Tensor x, Weight w, Tensor? bias, Tensor y, GemmEpilogue epilogue = GemmEpilogue.None, Tensor? residual = null, Tensor? gate = null)
    {
        switch (w)
        {
            case DenseWeight d: Gemm(x, d.Matrix, bias, y, epilogue, residual, gate); break;
            case LoraWeight l: LowRankPath.Gemm(this, x, l, bias, y, epilogue, residual, gate); break;
            default: throw Refused(w);
        }
    }

    /// <summary><see cref="GemmGatedRows(Tensor, Tensor, Tensor?, Tensor, Tensor, Tensor, Tensor, ReadOnlySpan{int})"/> with W of any kind.</summary>
    void GemmGatedRows(Tensor x, Weight w, Tensor? bias, Tensor y, Tensor residual, Tensor gateBase, Tensor gate, ReadOnlySpan<int> rowSets)
    {
        switch (w)
        {
            case DenseWeight d: GemmGatedRows(x, d.Matrix, bias, y, residual, gateBase, gate, rowSets); break;
            case LoraWeight l: LowRankPath.GemmGatedRows(this, x, l, bias, y, residual, gateBase, gate, rowSets); break;
            default: throw Refused(w);
        }
    }

    /// <summary><see cref="Conv3d(Tensor, Tensor, Tensor?, Tensor, Conv3dGeometry, Tensor?)"/> with w [Cout, Cin·kT·kH·kW] of any kind but LoRA.</summary>
    void Conv3d(Tensor x, Weight w, Tensor? bias, Tensor y, Conv3dGeometry geometry, Tensor? timeCache = null)
    {
        if (w is not DenseWeight d) throw Refused(w);
        Conv3d(x, x.Rank == 4 ? d.Kernel(x.Dim(0), geometry) : d.Tensor, bias, y, geometry, timeCache);
    }

    /// <summary>Expands w into y F32 [w.Out, w.In] (what the kernels multiply; for checks and for merging adapters).</summary>
    void Dequantize(Weight w, Tensor y) => throw Refused(w);

    private ArgumentException Refused(Weight w) => new($"w: {Device.Id} does not multiply {w?.Format ?? "null"} weights", nameof(w));

    // ---- norms and modulation -----------------------------------------------------------------------

    /// <summary>LayerNorm over the last dim of x [M,N]; weight and bias [N] optional. Statistics in f32.</summary>
    void LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps, Tensor y);

    /// <summary>RMS norm over the last dim of x [M,N]: x / sqrt(mean(x²) + eps) · weight (T5 and Wan q/k norm).</summary>
    void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y);

    /// <summary>Wan VAE channel-first RMS norm of x [C, L]: per position l, x / max(‖x[:,l]‖₂, 1e-12) · √C · gamma[C] (+ beta[C]).</summary>
    void ChannelRmsNorm(Tensor x, Tensor gamma, Tensor? beta, Tensor y);

    /// <summary>AdaLN: y = LayerNorm(x)·(1 + scale) + shift with x [M,N], shift and scale [N], no affine.</summary>
    void AdaLnModulate(Tensor x, Tensor shift, Tensor scale, float eps, Tensor y);

    /// <summary>x += gate ⊙ y with x, y [M,N] and gate [N].</summary>
    void GatedResidual(Tensor x, Tensor y, Tensor gate);

    // ---- per-row modulation (per-token timesteps: Wan2.2 TI2V, image to video) ------------------------
    // Row r of x uses modulation set s = rowSets[r] ∈ [0, G): rowSets has one entry per row of x (for a packed
    // batch, the per-token pattern repeated per sample), G is the row count of the per-set tensor. A modulation
    // vector is base[N] + perSet[s, :], summed in f32 before use (exactly scale_shift_table + temb). The per-set
    // tensors [G, N] may have a row stride (column views into timestep_proj [G, 6·N]).

    /// <summary>
    /// AdaLN with a modulation set per row: y[r] = LayerNorm(x[r])·(1 + (scaleBase + scale[s])) + (shiftBase + shift[s]),
    /// s = rowSets[r]; x [M,N], shiftBase and scaleBase [N], shift and scale [G,N], no affine.
    /// </summary>
    void AdaLnModulateRows(Tensor x, Tensor shiftBase, Tensor shift, Tensor scaleBase, Tensor scale, ReadOnlySpan<int> rowSets, float eps, Tensor y);

    /// <summary>
    /// The GatedResidual GEMM with a gate per set: y[r] = residual[r] + (gateBase + gate[s]) ⊙ (x[r]·Wᵀ + bias), s = rowSets[r];
    /// x [M,K], w [N,K], residual [M,N] (may be y itself), gateBase [N], gate [G,N].
    /// </summary>
    void GemmGatedRows(Tensor x, Tensor w, Tensor? bias, Tensor y, Tensor residual, Tensor gateBase, Tensor gate, ReadOnlySpan<int> rowSets);

    // ---- elementwise ---------------------------------------------------------------------------------

    void GeluTanh(Tensor x, Tensor y);
    void Silu(Tensor x, Tensor y);
    void Add(Tensor a, Tensor b, Tensor y);
    void Mul(Tensor a, Tensor b, Tensor y);
    /// <summary>y = a·x + b (scalars a, b).</summary>
    void ScaleShift(Tensor x, float a, float b, Tensor y);
    void Clamp(Tensor x, float min, float max, Tensor y);
    /// <summary>Per channel of x [C, L]: y = x·scale[c] + shift[c] (latent (de)normalisation).</summary>
    void ChannelAffine(Tensor x, float[] scale, float[] shift, Tensor y);
    /// <summary>Classifier-free guidance: y = uncond + g·(cond − uncond).</summary>
    void CfgCombine(Tensor uncond, Tensor cond, float guidance, Tensor y);
    /// <summary>Nearest 2× upsampling in space: x [C,T,H,W] → y [C,T,2H,2W].</summary>
    void Upsample2x(Tensor x, Tensor y);
    /// <summary>Sinusoidal embedding y [B, dim] of timesteps (flip_sin_to_cos puts cos first; downscale_freq_shift as diffusers).</summary>
    void TimestepEmbedding(float[] timesteps, int dim, bool flipSinToCos, float downscaleFreqShift, Tensor y);
    /// <summary>Gathers rows of table [V, D] (any weight dtype) into y [N, D] as f32; an id outside [0, V) is an error.</summary>
    void Embedding(int[] ids, Tensor table, Tensor y);
    /// <summary>x [C,T,H,W] → y [T·(H/ph)·(W/pw), C·pt·ph·pw], tokens ordered (frame, row, column), features (c, kt, kh, kw).</summary>
    void Patchify(Tensor x, int pt, int ph, int pw, Tensor y);
    /// <summary>Inverse layout of <see cref="Patchify"/> for the transformer output: x [T'·H'·W', C·pt·ph·pw] with features (kt, kh, kw, c) → y [C, T'·pt, H'·ph, W'·pw].</summary>
    void Unpatchify(Tensor x, int pt, int ph, int pw, Tensor y);

    // ---- sampler -------------------------------------------------------------------------------------

    /// <summary>Flow-matching Euler step in place: x += (sigmaNext − sigma)·v.</summary>
    void EulerStep(Tensor x, Tensor v, float sigma, float sigmaNext);
    /// <summary>y = Σ coefficients[i]·terms[i] in one pass (UniPC predictor and corrector updates).</summary>
    void LinearCombination(ReadOnlySpan<float> coefficients, ReadOnlySpan<Tensor> terms, Tensor y);
}
