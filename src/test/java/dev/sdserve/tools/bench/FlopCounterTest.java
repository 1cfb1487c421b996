package dev.sdserve.tools.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.UNetConfig;

class FlopCounterTest {
    @Test
    void sd15UnetAt64IsTheReference803Gflop() {
        ModelConfig c = Sd15.config();
        // Reference figure of the issue: 803 GFLOP per SD 1.5 UNet call at 64×64, batch 1.
        assertEquals(803.27, FlopCounter.unet(c.unet(), 1, 64, 64, 77) / 1e9, 0.01);
        assertEquals(2 * 803.27, FlopCounter.unet(c.unet(), 2, 64, 64, 77) / 1e9, 0.02);
    }

    @Test
    void tinyUnetByHand() {
        // One level of 8 channels, one res block, no attention, 2×2 latent, time embedding 32:
        // conv_in 2·4·9·4·8 = 2304; time MLP 2·8·32 + 2·32·32 = 2560; down res (8→8) 2·(2·4·9·64) + 2·32·8 = 9728;
        // mid 2 res = 19456; up: 2 res with skip concat (8+8→8): 2·4·9·16·8 + 2·4·9·64 + 2·32·8 + 2·4·16·8 = 15360
        // each; conv_out 2·4·9·8·4 = 2304.
        UNetConfig u = new UNetConfig(4, 4, List.of(8), 1, List.of(false), List.of(false), false, List.of(1), 16,
                false, 1, 4, 1e-5, "epsilon", 2);
        assertEquals(2304 + 2560 + 9728 + 19456 + 2 * 15360 + 2304, FlopCounter.unet(u, 1, 2, 2, 77), 1e-6);
    }

    @Test
    void textEncoderAndVaeOrderOfMagnitude() {
        ModelConfig c = Sd15.config();
        // CLIP ViT-L text tower: ~13.4 GFLOP for 77 tokens (12 × (4·2·77·768² + 4·77²·768 + 4·77·768·3072)).
        assertEquals(12 * (8.0 * 77 * 768 * 768 + 4.0 * 77 * 77 * 768 + 4.0 * 77 * 768 * 3072),
                FlopCounter.textEncoder(c.textEncoder(), 1, 77), 1);
        // VAE decoder at 512² by hand (GFLOP): level 512² (128 ch) 154.6 + 77.3 + 17.2 + 4·77.3 = 558.3, upsample
        // conv into 512² at 256 ch 309.2; level 256² likewise 558.3 + upsample conv 309.2; level 128² 6·77.3 =
        // 463.8 + upsample conv 77.3; level 64² 6·19.3 = 115.9; mid 2 res 77.3 + attention 8.6 + 34.4; conv_in/out,
        // post-quant ≈ 1.1 → ≈ 2513 GFLOP (1.26 TMAC).
        double v512 = FlopCounter.vaeDecoder(c.vae(), 1, 64, 64), v256 = FlopCounter.vaeDecoder(c.vae(), 1, 32, 32);
        assertEquals(2513, v512 / 1e9, 5);
        // It grows slightly faster than the pixel count (the mid attention is quadratic in tokens).
        assertTrue(v512 / v256 > 4.0 && v512 / v256 < 4.1, "ratio " + v512 / v256);
    }
}
