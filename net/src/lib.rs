//! percore-net
