"""Tiny, randomly initialised image-to-video pipelines for offline CPU tests.

Each builder makes a pipeline from tiny configs (after diffusers' own fast tests), saves it with
``save_pretrained(directory)`` and returns the directory, so tests load it back through the real
``from_pretrained(local_dir)`` path. Text pipelines get an offline tokenizer: a small Unigram model
trained with the ``tokenizers`` library on a few prompts, wrapped in ``PreTrainedTokenizerFast``,
paired with a T5/UMT5 encoder of the same vocabulary size.

Usage::

    from tinymodels import build_tiny_ltx
    model_dir = build_tiny_ltx(tmp_path / "ltx")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import diffusers
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

# Untyped third-party constructors, used through Any.
d: Any = diffusers
tf: Any = transformers

_CORPUS = [
    "gentle breathing, subtle blink, slight head tilt to the left",
    "same person, consistent face, natural subtle motion, static camera, seamless loop",
    "warping, distorted face, melting face, morphing, extra teeth, flicker, jitter, blurry",
    "hair swaying in a light breeze, fabric rippling, small smile, nod, slow zoom in",
    "the person in the photo moves naturally, realistic, high quality portrait video",
    "astronaut, cat, dog, woman, man, child, old photo, scan, noise, scratches",
]
_SPECIALS = ["<pad>", "</s>", "<unk>"]
TEXT_DIM = 32
# The tiny Wan CLIP encoder sees 32 px in 8-px patches: 16 patches + the class token.
_WAN_CLIP_TOKENS = 17


def build_tokenizer(vocab_size: int = 160) -> Any:
    """Train a small Unigram tokenizer offline (the pipeline's ``save_pretrained`` stores it)."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=_SPECIALS, unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = tf.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=512,
    )
    return fast


def _t5_encoder(vocab: int) -> Any:
    torch.manual_seed(0)
    config = tf.T5Config(
        vocab_size=vocab,
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
    )
    return tf.T5EncoderModel(config).eval()


def _umt5_encoder(vocab: int) -> Any:
    torch.manual_seed(0)
    config = tf.UMT5Config(
        vocab_size=vocab,
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
    )
    return tf.UMT5EncoderModel(config).eval()


def build_tiny_ltx(directory: Path) -> Path:
    """An ``LTXConditionPipeline`` with a 1-layer transformer and an 8-channel VAE."""
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    transformer = d.LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=TEXT_DIM,
    )
    torch.manual_seed(0)
    vae = d.AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=True,  # like the real 0.9.1+ VAEs: decode_timestep is used
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    pipe = d.LTXConditionPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=d.FlowMatchEulerDiscreteScheduler(),
        text_encoder=_t5_encoder(len(tokenizer)),
        tokenizer=tokenizer,
    )
    pipe.save_pretrained(str(directory))
    return directory


def build_tiny_wan(directory: Path, first_last_frame: bool = True) -> Path:
    """A Wan 2.1-style ``WanImageToVideoPipeline`` with its CLIP image encoder.

    ``first_last_frame`` gives the transformer the image position embedding of the FLF2V
    checkpoints (two CLIP token sequences: first and last frame), so ``last_image=`` works.
    """
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    vae = d.AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    torch.manual_seed(0)
    transformer = d.WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4,
        pos_embed_seq_len=2 * _WAN_CLIP_TOKENS if first_last_frame else None,
    )
    torch.manual_seed(0)
    image_encoder = tf.CLIPVisionModel(
        tf.CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=8,
        )
    ).eval()
    pipe = d.WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=_umt5_encoder(len(tokenizer)),
        vae=vae,
        scheduler=d.FlowMatchEulerDiscreteScheduler(shift=7.0),
        image_processor=tf.CLIPImageProcessor(crop_size=32, size=32),
        image_encoder=image_encoder,
        transformer=transformer,
    )
    pipe.save_pretrained(str(directory))
    return directory


def build_tiny_svd(directory: Path, num_frames: int = 8) -> Path:
    """A ``StableVideoDiffusionPipeline`` whose tiny CLIP image encoder takes 224-px input."""
    torch.manual_seed(0)
    unet = d.UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=16,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32,
        num_attention_heads=8,
        projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
        num_frames=num_frames,
    )
    scheduler = d.EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        trained_betas=None,
        use_karras_sigmas=True,
    )
    torch.manual_seed(0)
    vae = d.AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        latent_channels=4,
    )
    torch.manual_seed(0)
    image_encoder = tf.CLIPVisionModelWithProjection(
        tf.CLIPVisionConfig(
            hidden_size=32,
            projection_dim=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=224,
            intermediate_size=37,
            patch_size=32,
        )
    ).eval()
    pipe = d.StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=scheduler,
        feature_extractor=tf.CLIPImageProcessor(crop_size=224, size=224),
    )
    pipe.save_pretrained(str(directory))
    return directory


def _gemma3_encoder(vocab: int) -> Any:
    """A 2-layer Gemma 3 (text + a 1-layer SigLIP tower, as the class requires) of ``vocab`` tokens.

    The image token ids sit at the top of the vocabulary so no prompt token collides with them.
    """
    torch.manual_seed(0)
    text = tf.Gemma3TextConfig(
        vocab_size=vocab + 3,
        hidden_size=32,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=1024,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    vision = tf.SiglipVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=16,
        patch_size=4,
    )
    config = tf.Gemma3Config(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        mm_tokens_per_image=4,
        boi_token_index=vocab,
        eoi_token_index=vocab + 1,
        image_token_index=vocab + 2,
    )
    return tf.Gemma3ForConditionalGeneration(config).eval()


def build_tiny_ltx2(directory: Path, pipeline: str = "LTX2Pipeline") -> Path:
    """An LTX-2 pipeline folder laid out like the hub's (``model_index.json`` names ``pipeline``).

    Tiny Gemma 3 text encoder (2 layers), connectors, a 2-layer audio-video transformer, a video VAE
    with one down/up stage (8x spatial, 8x... see ``spatial_compression_ratio``), an audio VAE and
    a vocoder. Saved with ``save_pretrained`` so tests load it through ``from_pretrained(dir)``.
    """
    tokenizer = build_tokenizer()
    text_encoder = _gemma3_encoder(len(tokenizer))
    hidden = text_encoder.config.text_config.hidden_size
    layers = text_encoder.config.text_config.num_hidden_layers
    torch.manual_seed(0)
    transformer = d.LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=hidden,
        rope_double_precision=False,
        rope_type="split",
    )
    torch.manual_seed(0)
    connectors = d.pipelines.ltx2.LTX2TextConnectors(
        caption_channels=hidden,
        text_proj_in_factor=layers + 1,
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=128,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=128,
        connector_rope_base_seq_len=32,
        rope_theta=10000.0,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
    )
    torch.manual_seed(0)
    vae = d.AutoencoderKLLTX2Video(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8,),
        decoder_block_out_channels=(8,),
        layers_per_block=(1,),
        decoder_layers_per_block=(1, 1),
        spatio_temporal_scaling=(True,),
        decoder_spatio_temporal_scaling=(True,),
        decoder_inject_noise=(False, False),
        downsample_type=("spatial",),
        upsample_residual=(False,),
        upsample_factor=(1,),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    torch.manual_seed(0)
    audio_vae = d.AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=8,
    )
    torch.manual_seed(0)
    vocoder = d.pipelines.ltx2.LTX2Vocoder(
        in_channels=audio_vae.config.output_channels * audio_vae.config.mel_bins,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[4, 4],
        upsample_factors=[2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=16000,
    )
    cls = getattr(d, pipeline)
    pipe = cls(
        transformer=transformer,
        vae=vae,
        audio_vae=audio_vae,
        scheduler=d.FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=connectors,
        vocoder=vocoder,
    )
    pipe.save_pretrained(str(directory))
    return directory


class PoisonedLtxVae(d.AutoencoderKLLTXVideo):  # type: ignore[misc]
    """The tiny LTX VAE with a decoder that fails like a half-precision VAE overflowing.

    ``poison`` chooses how: ``"half"`` decodes to NaN unless the VAE runs in float32 (the
    fp16/bf16 overflow the float32 retry cures); ``"nan"`` always decodes to NaN; ``"zeros"``
    always decodes to a flat mid-grey (all-zero output in -1..1); ``"first"`` poisons only the
    first clip of each decoded batch.
    """

    poison = "half"

    def _decode(
        self, z: torch.Tensor, temb: torch.Tensor | None = None, return_dict: bool = True
    ) -> Any:
        sample = super()._decode(z, temb, return_dict=False)[0]
        if (self.poison == "half" and self.dtype != torch.float32) or self.poison == "nan":
            sample = sample * float("nan")
        elif self.poison == "zeros":
            sample = torch.zeros_like(sample)
        elif self.poison == "first":
            sample = sample.clone()
            sample[0] = float("nan")
        return (
            (sample,) if not return_dict else d.models.autoencoders.vae.DecoderOutput(sample=sample)
        )


def poisoned_ltx(directory: Path, poison: str, dtype: torch.dtype = torch.float32) -> Any:
    """The tiny LTX pipeline saved in ``directory``, loaded back with a ``PoisonedLtxVae``."""
    pipe = d.LTXConditionPipeline.from_pretrained(str(directory))
    vae = PoisonedLtxVae.from_pretrained(str(directory / "vae"))
    vae.poison = poison
    pipe.vae = vae
    pipe.register_modules(vae=vae)
    return pipe.to(dtype)


def build_tiny_ltx_nan_decoder(directory: Path) -> Path:
    """A tiny LTX folder whose VAE decoder has NaN output weights (every decode is NaN)."""
    build_tiny_ltx(directory)
    vae = d.AutoencoderKLLTXVideo.from_pretrained(str(directory / "vae"))
    with torch.no_grad():
        vae.decoder.conv_out.conv.weight.fill_(float("nan"))
    vae.save_pretrained(str(directory / "vae"))
    return directory
