/*
 * libFuzzer target for common/codec_config.c. The first byte chooses the
 * parser (high bit clear: even AVCDecoderConfigurationRecord, odd
 * AudioSpecificConfig; high bit set: even hvcC, odd av1C); the rest is the
 * record. Successful parses also render their codec string
 * and must report sane values. The avcC bytes also go through the H.264
 * sample looks (IDR picture, caption SEI), bits 2-3 of the first byte
 * choosing the NAL length size.
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
    char codec[48];
    if (data[0] & 0x80) {
        if ((data[0] & 1) == 0) {
            hevc_config_t cfg;
            if (hevc_parse_hvcc(data + 1, size - 1, &cfg) == 0) {
                if (cfg.width < 0 || cfg.height < 0 || cfg.width > 16384 ||
                    cfg.height > 16384 || (cfg.nal_length_size != 1 &&
                                           cfg.nal_length_size != 2 && cfg.nal_length_size != 4))
                    abort();
                hevc_codec_string(&cfg, codec, sizeof(codec));
            }
        } else {
            av1_config_t cfg;
            if (av1_parse_av1c(data + 1, size - 1, &cfg) == 0) {
                if (cfg.width < 0 || cfg.height < 0 || cfg.width > 16384 || cfg.height > 16384)
                    abort();
                av1_codec_string(&cfg, codec, sizeof(codec));
            }
        }
    } else if ((data[0] & 1) == 0) {
        (void)h264_sample_has_idr(data + 1, size - 1, 1 << ((data[0] >> 2) & 3));
        (void)h264_sample_has_captions(data + 1, size - 1, 1 << ((data[0] >> 2) & 3));
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
