//! quant (in progress)
