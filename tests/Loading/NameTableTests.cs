using Sora.Native.Loading;
using Sora.Runtime.Safetensors;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Loading;

/// <summary>The name tables against diffusers' converters (scripts/convert_wan_to_diffusers.py) and the layout specification.</summary>
public sealed class NameTableTests
{
    [Theory]
    [InlineData("blocks.7.self_attn.q.weight", "blocks.7.attn1.to_q.weight")]
    [InlineData("blocks.7.self_attn.o.bias", "blocks.7.attn1.to_out.0.bias")]
    [InlineData("blocks.12.cross_attn.norm_k.weight", "blocks.12.attn2.norm_k.weight")]
    [InlineData("blocks.0.norm3.weight", "blocks.0.norm2.weight")]
    [InlineData("blocks.3.ffn.0.weight", "blocks.3.ffn.net.0.proj.weight")]
    [InlineData("blocks.3.ffn.2.bias", "blocks.3.ffn.net.2.bias")]
    [InlineData("blocks.29.modulation", "blocks.29.scale_shift_table")]
    [InlineData("head.modulation", "scale_shift_table")]
    [InlineData("head.head.weight", "proj_out.weight")]
    [InlineData("time_projection.1.weight", "condition_embedder.time_proj.weight")]
    [InlineData("text_embedding.2.bias", "condition_embedder.text_embedder.linear_2.bias")]
    [InlineData("time_embedding.0.weight", "condition_embedder.time_embedder.linear_1.weight")]
    [InlineData("patch_embedding.weight", "patch_embedding.weight")]
    public void Transformer_names_map_like_diffusers_converter(string original, string diffusers)
    {
        Assert.Equal(diffusers, WanTransformerNames.Table.ToModel(original));
        Assert.Equal(original, WanTransformerNames.Table.ToStored(diffusers));
    }

    [Theory]
    [InlineData("blocks.0.attn1.to_q.weight")]      // already a diffusers name
    [InlineData("blocks.0.self_attn.q_extra.weight")] // a module that merely starts like one
    [InlineData("blocks.x.self_attn.q.weight")]     // not an index
    public void Names_no_entry_matches_are_left_alone(string name) => Assert.Null(WanTransformerNames.Table.ToModel(name));

    [Fact]
    public void A_prefix_is_removed_only_when_every_key_has_it()
    {
        var table = WanTransformerNames.Table;
        Assert.Equal("model.diffusion_model.", table.CommonPrefix(["model.diffusion_model.a", "model.diffusion_model.b"]));
        Assert.Equal("diffusion_model.", table.CommonPrefix(["diffusion_model.a", "diffusion_model.b"]));
        Assert.Equal("", table.CommonPrefix(["model.diffusion_model.a", "b"]));
    }

    [Fact]
    public void Every_tensor_of_the_original_vae_file_maps_to_the_diffusers_layout_with_its_shape()
    {
        // The fixture VAE has the real Wan2.1 structure (dim_mult 1,2,4,4; 2 residual blocks; time halved twice);
        // VaeTensorShapes writes the diffusers names and shapes from the specification, independently of the table.
        using var file = SafetensorsFile.Open(Path.Combine(SingleFileFixtureTests.Dir, "wan_2.1_vae_tiny_fp32.safetensors"));
        var table = WanVaeNames.Table(stages: 4, numResBlocks: 2);
        var mapped = file.Entries.ToDictionary(e => table.ToModel(e.Name) ?? e.Name, e => e.Shape);
        var expected = VaeTensorShapes(8, [1, 2, 4, 4], 4, 2, [false, true, true]).ToDictionary(t => t.Name, t => t.Shape);
        Assert.Equal(expected.Keys.Order(), mapped.Keys.Order());
        foreach (var (name, shape) in expected) Assert.True(shape.SequenceEqual(mapped[name]), name);
    }

    [Theory]
    [InlineData("decoder.upsamples.0.residual.0.gamma", "decoder.up_blocks.0.resnets.0.norm1.gamma")]
    [InlineData("decoder.upsamples.2.residual.6.bias", "decoder.up_blocks.0.resnets.2.conv2.bias")]
    [InlineData("decoder.upsamples.3.resample.1.weight", "decoder.up_blocks.0.upsamplers.0.resample.1.weight")]
    [InlineData("decoder.upsamples.4.shortcut.weight", "decoder.up_blocks.1.resnets.0.conv_shortcut.weight")]
    [InlineData("decoder.upsamples.11.resample.1.weight", "decoder.up_blocks.2.upsamplers.0.resample.1.weight")]
    [InlineData("decoder.upsamples.12.residual.2.weight", "decoder.up_blocks.3.resnets.0.conv1.weight")]
    [InlineData("encoder.downsamples.5.time_conv.bias", "encoder.down_blocks.5.time_conv.bias")]
    [InlineData("encoder.middle.1.to_qkv.weight", "encoder.mid_block.attentions.0.to_qkv.weight")]
    [InlineData("encoder.middle.2.residual.3.gamma", "encoder.mid_block.resnets.1.norm2.gamma")]
    [InlineData("conv1.weight", "quant_conv.weight")]
    [InlineData("decoder.head.0.gamma", "decoder.norm_out.gamma")]
    public void Vae_names_map_like_diffusers_converter(string original, string diffusers)
        => Assert.Equal(diffusers, WanVaeNames.Table(4, 2).ToModel(original));

    [Theory]
    [InlineData("enc.blk.3.attn_q.weight", "encoder.block.3.layer.0.SelfAttention.q.weight")]
    [InlineData("enc.blk.0.attn_rel_b.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")]
    [InlineData("enc.blk.23.ffn_gate.weight", "encoder.block.23.layer.1.DenseReluDense.wi_0.weight")]
    [InlineData("token_embd.weight", "shared.weight")]
    public void Umt5_gguf_names_map_to_hugging_face_names(string gguf, string hf) => Assert.Equal(hf, Umt5Names.Table.ToModel(gguf));
}
