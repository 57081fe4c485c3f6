# Provider settings the Vagrantfile loads: the lab network per hypervisor, resources per
# role, and provisioning. Everything about the lab itself comes from lab.json.
require "ipaddr"
require "json"

module Halab
  # The smallest memory that works: 512 MiB runs every role on the baked box (2.5 GiB for
  # five VMs); compiling at `vagrant up` (the fallback box) needs 1 GiB on directors and
  # real servers.
  RESOURCES = {
    "director" => { cpus: 1, memory: 512, compile_memory: 1024 },
    "realserver" => { cpus: 1, memory: 512, compile_memory: 1024 },
    "client" => { cpus: 1, memory: 512, compile_memory: 512 },
  }.freeze

  # Vagrant commands that act on no machine of the lab.
  MACHINELESS = %w[box plugin version global-status help -h --help].freeze

  # Every path and every name the host sees (VMs, networks) comes from halab's vagrant
  # provider (halab/paths.py owns them: they carry the checkout's id).
  def self.env(name)
    ENV.fetch(name) { abort "#{name} is not set: drive this Vagrantfile with `invoke lab.up --provider vagrant`" }
  end

  # The checkout (provision scripts) and the state directory (sources, rendered files) at
  # their guest paths: HALAB_HOME may live anywhere.
  def self.synced_folders(config)
    config.vm.synced_folder ".", env("HALAB_GUEST_PROJECT"), type: "rsync",
                            rsync__exclude: JSON.parse(env("HALAB_PROJECT_EXCLUDES"))
    config.vm.synced_folder env("HALAB_STATE"), env("HALAB_GUEST_STATE"), type: "rsync",
                            rsync__exclude: JSON.parse(env("HALAB_STATE_EXCLUDES"))
  end

  # HALAB_BOX / HALAB_BUILD_FROM_SOURCE are set by the vagrant provider: the lab's box when
  # `vagrant box list` has it, else the public fallback box compiling from source.
  def self.box(lab)
    ENV.fetch("HALAB_BOX", lab["box"])
  end

  def self.build_from_source?
    ENV["HALAB_BUILD_FROM_SOURCE"] == "1"
  end

  # The lab subnet on its own isolated network: no DHCP, no forwarding. vagrant-libvirt adds
  # its management NIC first, so the lab NIC is eth1 on both hypervisors; the host side of the
  # libvirt network takes the subnet's reserved access address, never a node's.
  #
  # LVS-NAT (lab["nat"]): the real servers' own subnet is a second isolated network; real
  # servers sit on it alone (their lab NIC, eth1), directors get a second NIC on it (eth2).
  # vagrant-libvirt gives each network the first free virbrN bridge, so a network's name
  # (HALAB_NETWORK, HALAB_NAT_NETWORK) is never cut to an interface name's 15 characters.
  def self.lab_network(machine, lab, node)
    networks(lab, node).each do |network|
      machine.vm.network "private_network",
                         ip: network[:address], netmask: network[:netmask],
                         libvirt__network_name: network[:name], libvirt__dhcp_enabled: false,
                         libvirt__forward_mode: "none", libvirt__host_ip: network[:access],
                         virtualbox__intnet: network[:name]
    end
  end

  # The networks of one node, in NIC order: the lab subnet's, and with NAT the NAT network's.
  def self.networks(lab, node)
    front = { name: env("HALAB_NETWORK"), address: node["address"], netmask: netmask(lab["subnet"]),
              access: lab["access_address"] }
    nat = lab["nat"]
    return [front] if nat.nil?

    back = { name: env("HALAB_NAT_NETWORK"), netmask: netmask(nat["subnet"]), access: nat["access_address"] }
    return [back.merge(address: node["address"])] if node["role"] == "realserver"
    return [front, back.merge(address: nat["directors"][node["name"]])] if nat["directors"].key?(node["name"])

    [front]
  end

  def self.memory(role)
    RESOURCES.fetch(role)[build_from_source? ? :compile_memory : :memory]
  end

  # Dotted, as libvirt's network definition needs it (a prefix length such as "24" makes
  # libvirt refuse the bridge: "invalid netmask or IP address").
  def self.netmask(subnet)
    IPAddr.new("255.255.255.255").mask(subnet.split("/").last.to_i).to_s
  end

  # libvirt: domains named HALAB_VM_PREFIX + node (labs and checkouts side by side, and
  # `lab.down` finds them after a crash), and the driver halab's KVM probe chose
  # (HALAB_LIBVIRT_DRIVER: kvm, or qemu for TCG where /dev/kvm runs no guest; TCG boots
  # slowly, so the boot timeout grows).
  def self.resources(machine, role)
    cpus = RESOURCES.fetch(role)[:cpus]
    driver = ENV.fetch("HALAB_LIBVIRT_DRIVER", "kvm")
    machine.vm.boot_timeout = driver == "kvm" ? 300 : 900
    machine.vm.provider :libvirt do |vm|
      vm.default_prefix = env("HALAB_VM_PREFIX")
      vm.driver = driver
      vm.cpus = cpus
      vm.memory = memory(role)
    end
    machine.vm.provider :virtualbox do |vm|
      vm.cpus = cpus
      vm.memory = memory(role)
    end
  end

  # The scripts run from the synced checkout, not uploaded one by one (`path:`): each
  # sources lib.sh beside it.
  def self.provision_commands(lab, node)
    scripts = "#{env('HALAB_GUEST_PROJECT')}/provision"
    commands = []
    if build_from_source? && node["role"] != "client"
      lab["versions"].each do |name, version|
        commands << "sh #{scripts}/build-#{name}.sh #{env('HALAB_GUEST_SOURCES')}/#{name}-#{version}.tar.gz"
      end
    end
    commands << "sh #{scripts}/node.sh #{node['role']} #{env('HALAB_GUEST_RENDERED')}/#{node['name']} " \
                "#{env('HALAB_GUEST_MAILDIR')}"
  end

  def self.provision(machine, lab, node)
    provision_commands(lab, node).each { |command| machine.vm.provision "shell", inline: command }
  end

  # HALAB_VAGRANT_DUMP=1 vagrant validate: print the machines as the Vagrantfile sees them.
  def self.dump(lab)
    machines = lab["nodes"].map do |node|
      { "name" => node["name"], "address" => node["address"], "role" => node["role"],
        "domain" => env("HALAB_VM_PREFIX") + node["name"], "box" => box(lab), "networks" => networks(lab, node).map { |n| [n[:name], n[:address], n[:netmask]] },
        "cpus" => RESOURCES.fetch(node["role"])[:cpus], "memory" => memory(node["role"]),
        "provision" => provision_commands(lab, node) }
    end
    $stdout.puts "HALAB_MACHINES #{JSON.generate(machines)}"
  end
end
