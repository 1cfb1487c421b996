/**
 * Prompts as AUTOMATIC1111 users write them: attention weights ({@code (text)}, {@code [text]}, {@code (text:1.3)}),
 * escapes, {@code BREAK}, prompts longer than one 75-token chunk, and scheduled prompts ({@code [from:to:when]},
 * {@code [a|b]}). Pure functions over text and token ids; the text tower that turns id rows into hidden states is
 * the caller's ({@link dev.sdserve.prompt.PromptEncoder.Plan}), so the same chunking sits on any tower (CLIP L,
 * OpenCLIP, each of SDXL's two).
 *
 * <p>The rules follow AUTOMATIC1111's {@code modules/prompt_parser.py}, {@code modules/sd_hijack_clip.py} and
 * {@code modules/sd_emphasis.py} (the versions the golden set's {@code ext/golden-ext.json} names).
 */
package dev.sdserve.prompt;
