package dev.sdserve.model;

import java.util.List;

/** What the transports list: checkpoints, LoRAs. The registry implements it; tests may use a fixed list. */
public interface ModelCatalog {
    record ModelEntry(String name, String architecture, long sizeBytes, String dtype, String shortHash,
                      boolean resident, boolean isDefault) {
    }

    record LoraEntry(String name, long sizeBytes, String shortHash, int rank) {
    }

    List<ModelEntry> models();

    List<LoraEntry> loras();

    /** A fixed catalog (for the fake engine and tests). */
    static ModelCatalog of(List<ModelEntry> models, List<LoraEntry> loras) {
        return new ModelCatalog() {
            @Override
            public List<ModelEntry> models() {
                return models;
            }

            @Override
            public List<LoraEntry> loras() {
                return loras;
            }
        };
    }
}
