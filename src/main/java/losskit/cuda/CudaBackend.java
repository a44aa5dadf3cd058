package losskit.cuda;

import losskit.api.LossBackend;

/** Entry point of the CUDA backend (JCuda driver API). */
public final class CudaBackend {
    private CudaBackend() {
    }

    /**
     * Opens the CUDA backend or throws with the reason it cannot run here.
     *
     * @throws UnsupportedOperationException until the JCuda backend lands (issue "CUDA kernels compiled to PTX")
     */
    public static LossBackend open(int hostThreads) {
        throw new UnsupportedOperationException("this build has no CUDA backend yet");
    }
}
