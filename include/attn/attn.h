// SPDX-License-Identifier: MIT
// Umbrella header: everything a frontend may use.
#pragma once

#include "attn/context.h"
#include "attn/error.h"
#include "attn/io/image.h"
#include "attn/io/npy.h"
#include "attn/io/safetensors.h"
#include "attn/nn/attention.h"
#include "attn/nn/encoder_model.h"
#include "attn/nn/layers.h"
#include "attn/nn/module.h"
#include "attn/nn/transformer.h"
#include "attn/ops/activation.h"
#include "attn/ops/attention.h"
#include "attn/ops/layer_norm.h"
#include "attn/ops/linear.h"
#include "attn/ops/machine.h"
#include "attn/ops/positional.h"
#include "attn/ops/softmax.h"
#include "attn/tensor.h"
#include "attn/version.h"
