package dev.sdserve.scheduler;

import dev.sdserve.engine.CostModel;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.Stage;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Cost buckets are per model (so per architecture): SDXL steps measured on the same latent shape as an SD 1.x model's
 * leave the SD 1.x predictions where its own measurements put them, and admission buckets never merge two models.
 */
class CostBucketsPerModelTest {
    @Test
    void sdxlMeasurementsDoNotMoveSd1Predictions() {
        CostModel prior = CostModel.proportional(5, 10);
        OnlineCostModel costs = new OnlineCostModel(prior);
        LatentShape s = new LatentShape(4, 64, 64);
        costs.observe("sd15", Stage.DENOISE, s, 2, 4000);
        double sd1Before = costs.predictMillis("sd15", Stage.DENOISE, s, 2);
        double sd1Batch4 = costs.predictMillis("sd15", Stage.DENOISE, s, 4);
        double sd1Decode = costs.predictMillis("sd15", Stage.DECODE, s, 1);
        for (int i = 0; i < 20; i++) {
            costs.observe("sdxl", Stage.DENOISE, s, 2, 15000);
            costs.observe("sdxl", Stage.DENOISE, s, 4, 29000);
            costs.observe("sdxl", Stage.DECODE, s, 1, 9000);
        }
        assertEquals(4000, sd1Before, 1e-9);
        assertEquals(sd1Before, costs.predictMillis("sd15", Stage.DENOISE, s, 2), 1e-9);
        assertEquals(sd1Batch4, costs.predictMillis("sd15", Stage.DENOISE, s, 4), 1e-9);
        assertEquals(sd1Decode, costs.predictMillis("sd15", Stage.DECODE, s, 1), 1e-9);
        assertEquals(prior.predictMillis("sd15", Stage.DECODE, s, 1), sd1Decode, 1e-9, "SD 1.x decode still unmeasured");
        assertEquals(15000, costs.predictMillis("sdxl", Stage.DENOISE, s, 2), 1e-9);
        assertEquals(29000, costs.predictMillis("sdxl", Stage.DENOISE, s, 4), 1e-9);
        assertNotEquals(Work.bucketOf("sd15", s), Work.bucketOf("sdxl", s));
    }
}
