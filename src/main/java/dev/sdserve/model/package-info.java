/**
 * Model files: reading and writing checkpoints, their architecture, the tokenizer, LoRAs and golden sets.
 *
 * <ul>
 *   <li>{@link dev.sdserve.model.SafeTensors} / {@link dev.sdserve.model.SafeTensorsWriter}: the file format
 *       (validated reads, streamed atomic writes).</li>
 *   <li>{@link dev.sdserve.model.ModelConfigs}: the SD 1.x architecture ({@link dev.sdserve.model.ModelConfig})
 *       read from LDM tensor shapes plus an optional diffusers-style config JSON; {@code sd15()}; {@code toJson}.</li>
 *   <li>{@link dev.sdserve.model.Checkpoint}: a validated civitai single-file checkpoint: config, keys per network,
 *       tensors as float32; clear errors for missing tensors and for files that are not SD 1.x checkpoints.</li>
 *   <li>{@link dev.sdserve.model.CheckpointLayout}: every tensor (name, shape, dtype) of such a file for a config,
 *       in civitai order (equals {@code shared/golden/sd15-full-layout.txt} for SD 1.5).</li>
 *   <li>{@link dev.sdserve.model.RandomCheckpoint}: deterministic random-weight checkpoints in that layout
 *       (bench's 2 GB SD 1.5, the embedded model); {@link dev.sdserve.model.EmbeddedModel}: the built-in tiny model.</li>
 *   <li>{@link dev.sdserve.model.ClipTokenizer}: CLIP BPE, 77 ids with SD 1.x padding.</li>
 *   <li>{@link dev.sdserve.model.LoraFile} / {@link dev.sdserve.model.LdmNames}: kohya LoRAs mapped to LDM weights.</li>
 *   <li>{@link dev.sdserve.model.GoldenSet}: a golden reference set (golden.json + golden.safetensors + model files).</li>
 * </ul>
 */
package dev.sdserve.model;
