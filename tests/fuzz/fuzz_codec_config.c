/*
 * libFuzzer target for common/codec_config.c. The first byte chooses the
 * parser (even: AVCDecoderConfigurationRecord, odd: AudioSpecificConfig);
 * the rest is the record. Successful parses also render their codec string
 * and must report sane values.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "codec_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char codec[16];
    if ((data[0] & 1) == 0) {
        h264_config_t cfg;
        if (h264_parse_avcc(data + 1, size - 1, &cfg) == 0) {
            if (cfg.width <= 0 || cfg.height <= 0 || cfg.width > 16384 || cfg.height > 16384)
                abort();
            h264_codec_string(&cfg, codec, sizeof(codec));
        }
    } else {
        aac_config_t cfg;
        if (aac_parse_asc(data + 1, size - 1, &cfg) == 0) {
            if (cfg.sample_rate <= 0 || cfg.channels < 0)
                abort();
            aac_codec_string(&cfg, codec, sizeof(codec));
        }
    }
    return 0;
}
