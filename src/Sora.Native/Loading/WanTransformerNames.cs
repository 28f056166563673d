namespace Sora.Native.Loading;

/// <summary>
/// The Wan2.1 repository's transformer names (wan/modules/model.py, as the Wan-AI files, ComfyUI's repackaged
/// files and city96's GGUF files store them) → diffusers' WanTransformer3DModel, after diffusers'
/// convert_wan_to_diffusers.py. Only names differ: every tensor has the same shape in both layouts (the
/// modulations [1, 6, dim] and [1, 2, dim] are the scale_shift_tables). The original calls its norms norm1, norm3
/// (the affine cross-attention norm), norm2 (the FFN's, no weights); diffusers calls the cross-attention norm norm2.
/// </summary>
public static class WanTransformerNames
{
    public static NameTable Table { get; } = new(
    [
        ("patch_embedding", "patch_embedding"),
        ("text_embedding.0", "condition_embedder.text_embedder.linear_1"),
        ("text_embedding.2", "condition_embedder.text_embedder.linear_2"),
        ("time_embedding.0", "condition_embedder.time_embedder.linear_1"),
        ("time_embedding.2", "condition_embedder.time_embedder.linear_2"),
        ("time_projection.1", "condition_embedder.time_proj"),
        ("blocks.#.modulation", "blocks.#.scale_shift_table"),
        ("blocks.#.self_attn.q", "blocks.#.attn1.to_q"),
        ("blocks.#.self_attn.k", "blocks.#.attn1.to_k"),
        ("blocks.#.self_attn.v", "blocks.#.attn1.to_v"),
        ("blocks.#.self_attn.o", "blocks.#.attn1.to_out.0"),
        ("blocks.#.self_attn.norm_q", "blocks.#.attn1.norm_q"),
        ("blocks.#.self_attn.norm_k", "blocks.#.attn1.norm_k"),
        ("blocks.#.norm3", "blocks.#.norm2"),
        ("blocks.#.cross_attn.q", "blocks.#.attn2.to_q"),
        ("blocks.#.cross_attn.k", "blocks.#.attn2.to_k"),
        ("blocks.#.cross_attn.v", "blocks.#.attn2.to_v"),
        ("blocks.#.cross_attn.o", "blocks.#.attn2.to_out.0"),
        ("blocks.#.cross_attn.norm_q", "blocks.#.attn2.norm_q"),
        ("blocks.#.cross_attn.norm_k", "blocks.#.attn2.norm_k"),
        ("blocks.#.ffn.0", "blocks.#.ffn.net.0.proj"),
        ("blocks.#.ffn.2", "blocks.#.ffn.net.2"),
        ("head.modulation", "scale_shift_table"),
        ("head.head", "proj_out"),
    ],
    // ComfyUI saves whole-model checkpoints under "model.diffusion_model."; LoRAs and some exports use "diffusion_model.".
    prefixes: ["model.diffusion_model.", "diffusion_model.", "model."]);
}
