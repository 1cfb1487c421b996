package dev.sdserve.model;

import java.util.List;

/** What the transports list: checkpoints, LoRAs. The registry implements it; tests may use a fixed list. */
public interface ModelCatalog {
    /**
     * @param description one line on what the model is for ("" when its sidecar JSON gives none)
     * @param defaults    its recommended settings, applied when a request leaves them unset ({@link ModelDefaults})
     */
    record ModelEntry(String name, String architecture, long sizeBytes, String dtype, String shortHash,
                      boolean resident, boolean isDefault, String description, ModelDefaults defaults) {
        public ModelEntry {
            description = description == null ? "" : description;
            defaults = defaults == null ? ModelDefaults.NONE : defaults;
        }

        /** An entry without description or recommended defaults. */
        public ModelEntry(String name, String architecture, long sizeBytes, String dtype, String shortHash,
                          boolean resident, boolean isDefault) {
            this(name, architecture, sizeBytes, dtype, shortHash, resident, isDefault, "", ModelDefaults.NONE);
        }
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
