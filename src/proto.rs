//! Code generated from proto/ by build.rs: Cilium's flow and observer APIs and Falco's legacy
//! outputs API, client and server (the tests serve them).
#![allow(clippy::all, missing_docs, non_camel_case_types)]

pub mod flow {
    tonic::include_proto!("flow");
}

pub mod relay {
    tonic::include_proto!("relay");
}

pub mod observer {
    tonic::include_proto!("observer");
}

pub mod falco {
    tonic::include_proto!("falco.outputs");
}
