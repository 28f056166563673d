namespace Sora.Native.Loading;

/// <summary>
/// The UMT5 encoder as single files store it. ComfyUI's umt5_xxl_*.safetensors keep Hugging Face UMT5EncoderModel
/// names, which are the names <see cref="Text.Umt5Encoder"/> binds, so for them the table only removes a wrapper
/// some files put around every key. GGUF conversions use llama.cpp's T5 names (enc.blk.N.attn_q, ...: the
/// key map of ComfyUI-GGUF's loader), mapped back here.
/// </summary>
public static class Umt5Names
{
    public static NameTable Table { get; } = new(
    [
        ("token_embd", "shared"),
        ("enc.output_norm", "encoder.final_layer_norm"),
        ("enc.blk.#.attn_norm", "encoder.block.#.layer.0.layer_norm"),
        ("enc.blk.#.attn_q", "encoder.block.#.layer.0.SelfAttention.q"),
        ("enc.blk.#.attn_k", "encoder.block.#.layer.0.SelfAttention.k"),
        ("enc.blk.#.attn_v", "encoder.block.#.layer.0.SelfAttention.v"),
        ("enc.blk.#.attn_o", "encoder.block.#.layer.0.SelfAttention.o"),
        ("enc.blk.#.attn_rel_b", "encoder.block.#.layer.0.SelfAttention.relative_attention_bias"),
        ("enc.blk.#.ffn_norm", "encoder.block.#.layer.1.layer_norm"),
        ("enc.blk.#.ffn_gate", "encoder.block.#.layer.1.DenseReluDense.wi_0"),
        ("enc.blk.#.ffn_up", "encoder.block.#.layer.1.DenseReluDense.wi_1"),
        ("enc.blk.#.ffn_down", "encoder.block.#.layer.1.DenseReluDense.wo"),
    ],
    prefixes: ["text_encoders.umt5xxl.transformer.", "umt5xxl.transformer.", "transformer.", "text_encoder."]);
}
