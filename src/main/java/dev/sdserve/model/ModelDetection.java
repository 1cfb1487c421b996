package dev.sdserve.model;

import java.util.Set;
import java.util.function.Predicate;

/**
 * Which family a single-file checkpoint belongs to, from its tensor names alone, or why it is not one this service
 * runs. The families and their signatures:
 * <ul>
 *   <li>SD 1.x: UNet under {@code model.diffusion_model.}, CLIP text encoder under
 *       {@code cond_stage_model.transformer.} (transformers' names), VAE under {@code first_stage_model.};</li>
 *   <li>SD 2.x: the same UNet and VAE, an OpenCLIP text tower under {@code cond_stage_model.model.};</li>
 *   <li>SDXL base: the UNet with {@code label_emb.*}, CLIP-L under {@code conditioner.embedders.0.transformer.}
 *       and OpenCLIP-bigG under {@code conditioner.embedders.1.model.}.</li>
 * </ul>
 * Everything else is refused naming what was found: LoRAs, textual inversions, ControlNets, IP-Adapters,
 * AnimateDiff motion modules, SD 3 (MMDiT {@code joint_blocks}), Flux ({@code double_blocks}/{@code single_blocks}),
 * other DiTs, Stable Cascade, Playground v2.5 (EDM), Stable Video Diffusion ({@code time_stack}/{@code time_mixer}),
 * the SDXL refiner (one OpenCLIP tower as embedder 0), SD 2.x unCLIP, depth and x4-upscaler models, and
 * diffusers-layout folders.
 */
public final class ModelDetection {
    public static final String SD2_TEXT = "cond_stage_model.model.";
    public static final String SDXL_TEXT1 = "conditioner.embedders.0.transformer.text_model.";
    public static final String SDXL_TEXT2 = "conditioner.embedders.1.model.";
    static final String LABEL_EMB = ModelConfigs.UNET + "label_emb.";
    private static final String SUPPORTED = "supported: SD 1.x, SD 2.x and SDXL base single-file checkpoints";

    /** A detected family, or the reason the file is not a supported checkpoint. */
    public record Result(String family, String refusal) {
        public boolean ok() {
            return refusal == null;
        }
    }

    private ModelDetection() {
    }

    static Result family(String f) {
        return new Result(f, null);
    }

    static Result refuse(String why) {
        return new Result(null, why);
    }

    public static Result detect(Set<String> names) {
        Predicate<String> any = s -> names.stream().anyMatch(n -> n.startsWith(s));
        Predicate<String> contains = s -> names.stream().anyMatch(n -> n.contains(s));
        if (names.stream().anyMatch(n -> n.startsWith("lora_unet_") || n.startsWith("lora_te") || n.contains(".lora_down.")
                || n.contains(".hada_w1_") || n.contains(".lokr_w1"))) {
            return refuse("it looks like a LoRA/LyCORIS file (kohya lora_unet_*/lora_te_* keys): load it as a LoRA, not a model");
        }
        if (contains.test(".lora_A.") || contains.test(".lora.down.") || contains.test("lora_linear_layer")) {
            return refuse("it looks like a diffusers/PEFT LoRA file (lora_A/lora_B keys): load it as a LoRA, not a model");
        }
        if (names.contains("emb_params") || any.test("string_to_param") || names.contains("clip_l") || names.contains("clip_g")) {
            return refuse("it looks like a textual-inversion embedding, not a model");
        }
        if (any.test("control_model.") || any.test("input_hint_block.") || any.test("zero_convs.")
                || any.test("controlnet_cond_embedding.")) {
            return refuse("it looks like a ControlNet, not a model");
        }
        if (any.test("ip_adapter.") || any.test("image_proj.")) {
            return refuse("it looks like an IP-Adapter (ip_adapter.* / image_proj.*), not a model");
        }
        if (contains.test("motion_modules.")) {
            return refuse("it looks like an AnimateDiff motion module (motion_modules.*), a video add-on, not a model");
        }
        if (contains.test("joint_blocks.")) {
            return refuse("it looks like a Stable Diffusion 3 / 3.5 checkpoint (MMDiT: "
                    + example(names, "joint_blocks.") + "); " + SUPPORTED);
        }
        if (contains.test("double_blocks.") || contains.test("single_blocks.")) {
            return refuse("it looks like a Flux checkpoint (" + example(names, contains.test("double_blocks.")
                    ? "double_blocks." : "single_blocks.") + "); " + SUPPORTED);
        }
        if (names.contains("edm_mean") || names.contains("edm_std")) {
            return refuse("it looks like Playground v2.5 (SDXL layout with an EDM formulation: edm_mean/edm_std); "
                    + SUPPORTED);
        }
        if (contains.test(".time_stack.") || contains.test(".time_mixer.")) {
            return refuse("it looks like a video model (Stable Video Diffusion: " + example(names, ".time_stack.")
                    + "); " + SUPPORTED);
        }
        if (any.test("clip_txt_mapper.") || any.test("effnet_mapper.") || contains.test(".channelwise.")) {
            return refuse("it looks like Stable Cascade (clip_txt_mapper / effnet_mapper); " + SUPPORTED);
        }
        boolean unet = any.test(ModelConfigs.UNET);
        if (!unet && (any.test("x_embedder.") || any.test("t_embedder.") || any.test("model.diffusion_model.x_embedder."))) {
            return refuse("it looks like a DiT-style model (PixArt, Hunyuan-DiT, ...: x_embedder / t_embedder); " + SUPPORTED);
        }
        if (any.test("conditioner.embedders.0.model.") && !any.test("conditioner.embedders.1.")) {
            return refuse("it looks like an SDXL refiner (a single OpenCLIP-bigG text encoder under "
                    + "conditioner.embedders.0.model.*, size and aesthetic-score conditioning in label_emb); the refiner "
                    + "is not supported, only SDXL base (CLIP-L + OpenCLIP-bigG)");
        }
        if (any.test("embedder.model.visual.") || any.test("noise_augmentor.")) {
            return refuse("it looks like an SD 2.x unCLIP model (image embedder / noise_augmentor); " + SUPPORTED);
        }
        if (any.test("low_scale_model.")) {
            return refuse("it looks like the SD 2.x x4 upscaler (low_scale_model.*); " + SUPPORTED);
        }
        if (any.test("depth_model.")) {
            return refuse("it looks like the SD 2.x depth-conditioned model (depth_model.*); " + SUPPORTED);
        }
        if (!unet && (any.test("down_blocks.") || any.test("mid_block.") || any.test("unet.down_blocks.")
                || any.test("encoder.down_blocks."))) {
            return refuse("it is in the diffusers key layout (down_blocks.*); expected the single-file LDM/SGM layout (model.diffusion_model.*)");
        }
        if (!unet) {
            String example = names.isEmpty() ? "none" : names.iterator().next();
            return refuse("it has " + names.size() + " tensors and none under " + ModelConfigs.UNET + " (e.g. " + example + ")");
        }
        boolean clip1 = any.test(ModelConfigs.TEXT_PARENT);
        boolean open2 = any.test(SD2_TEXT);
        boolean xl1 = any.test("conditioner.embedders.0.transformer.");
        boolean xl2 = any.test(SDXL_TEXT2);
        boolean label = any.test(LABEL_EMB);
        String family;
        if (xl1 || xl2 || any.test("conditioner.embedders.")) {
            if (!xl1 || !xl2) {
                return refuse("it has SDXL text encoders (conditioner.embedders.*) but not both of CLIP-L "
                        + "(conditioner.embedders.0.transformer.*) and OpenCLIP-bigG (" + SDXL_TEXT2 + "*)");
            }
            family = ModelConfig.SDXL;
        } else if (open2) {
            family = ModelConfig.SD2;
        } else if (clip1) {
            family = ModelConfig.SD1;
        } else {
            return refuse("it has a UNet but no text encoder (" + ModelConfigs.TEXT + "*, " + SD2_TEXT + "* or "
                    + "conditioner.embedders.*)");
        }
        if (label && !ModelConfig.SDXL.equals(family)) {
            return refuse("its UNet has added conditioning (label_emb.*) but its text encoder is "
                    + ModelConfig.displayName(family) + "'s: a class-conditioned or unCLIP model; " + SUPPORTED);
        }
        if (!label && ModelConfig.SDXL.equals(family)) {
            return refuse("it has SDXL's text encoders but its UNet lacks label_emb.* (SDXL's size conditioning)");
        }
        if (!any.test(ModelConfigs.VAE)) {
            return refuse("it has a UNet but no VAE (" + ModelConfigs.VAE + "*); bake a VAE into it first");
        }
        return family(family);
    }

    private static String example(Set<String> names, String part) {
        return names.stream().filter(n -> n.contains(part)).sorted().findFirst().orElse(part) + ", …";
    }
}
