/*
 * formats/pickle.h: a restricted unpickler for PyTorch state dicts (internal).
 *
 * It understands exactly what torch.save(model.state_dict()) writes into data.pkl (pickle
 * protocols 2-5; opcode semantics from CPython's Lib/pickletools.py) and never calls anything:
 * GLOBAL / STACK_GLOBAL resolve only names on a fixed allowlist
 *     collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter,
 *     torch._utils._rebuild_parameter_with_state, torch.<T>Storage (Float, Half, BFloat16,
 *     Double, Long, Int, Short, Char, Byte, Bool)
 * into inert markers, and REDUCE evaluates those markers symbolically. Any other global (os.system,
 * builtins.eval, subprocess.Popen, ...) is refused with SEMBED_EUNSAFE and an error naming it;
 * object-building opcodes (INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT*) are refused the same way. Stack,
 * memo, nesting and value counts are bounded. Storages come from BINPERSID records
 * ('storage', <T>Storage, key, location, numel), whose bytes live in the zip member data/<key>.
 *
 *     struct sp_state_dict sd;
 *     if (sp_load_state_dict(pkl, n, "pytorch_model.bin", &sd) == 0) {
 *         for (size_t i = 0; i < sd.n; i++) printf("%s key %s\n", sd.t[i].name, sd.t[i].key);
 *         sp_free(&sd);
 *     }
 */
#ifndef SEMBED_FORMATS_PICKLE_H
#define SEMBED_FORMATS_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#define SP_MAX_DIMS 8

enum sp_storage {
    SP_FLOAT, SP_HALF, SP_BFLOAT16, SP_DOUBLE, SP_LONG, SP_INT, SP_SHORT, SP_CHAR, SP_BYTE, SP_BOOL,
    SP_STORAGE_COUNT
};

struct sp_tensor {
    char *name;                  /* state-dict key (heap) */
    enum sp_storage stype;
    char *key;                   /* storage key: zip member <archive>/data/<key> (heap) */
    uint64_t storage_numel;      /* elements in the storage (as the record states) */
    uint64_t offset;             /* storage offset, in elements */
    uint32_t n_dims;             /* 0..SP_MAX_DIMS */
    int64_t sizes[SP_MAX_DIMS];
    int64_t strides[SP_MAX_DIMS];
};

struct sp_state_dict {
    struct sp_tensor *t;         /* in pickle order */
    size_t n;
};

size_t sp_storage_elem_size(enum sp_storage s);
const char *sp_storage_name(enum sp_storage s); /* "FloatStorage", ... */

/* Interpret pkl[0, len) as a state dict {str: tensor}. On failure nothing needs freeing. */
int sp_load_state_dict(const void *pkl, size_t len, const char *label, struct sp_state_dict *out);
void sp_free(struct sp_state_dict *sd);

#endif
